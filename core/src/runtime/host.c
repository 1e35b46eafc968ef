/* host.c: Lua states and the one scheduler.
 *
 * Owns: the process loop, every th_state (a Lua state with a counting allocator;
 * its CPU budget is budget.c's), and every th_ctx (one coroutine per unit of work).
 * th__run is the only function that calls lua_resume. A ctx is allocated here,
 * handed to its owner through the done callback, and given back with
 * th_ctx_release; its coroutine is anchored in the registry for its whole life
 * and reused for the next unit of work when it finished cleanly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lualib.h>

#include "runtime/config.h"
#include "runtime/host_internal.h"

static uv_loop_t loop;
static int loop_ready;
static char *lua_root;
static th_ctx *running_ctx; /* the ctx inside lua_resume, for the budget hook */
static th_preload_fn preload;

/* Every live state, for metrics and shutdown. */
static th_state **all_states;
static int n_states, cap_states;

#define CTX_POOL_MAX 256

uv_loop_t *th_loop(void) { return &loop; }

void th_loop_init(void) {
  if (loop_ready) uv_loop_close(&loop);
  uv_loop_init(&loop);
  loop_ready = 1;
}

const char *th_lua_root(void) { return lua_root; }

void th_host_set_preload(th_preload_fn fn) { preload = fn; }

void th_set_lua_root(const char *dir) {
  free(lua_root);
  lua_root = dir ? strdup(dir) : NULL;
}

uint64_t th_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- memory ceiling ---------------------------------------------------- */

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  th_state *s = ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    s->mem_used -= osize;
    return NULL;
  }
  if (nsize > osize && s->mem_limit && s->mem_used + (nsize - osize) > s->mem_limit)
    return NULL; /* Lua collects and retries, then raises "not enough memory" */
  void *p = realloc(ptr, nsize);
  if (p) s->mem_used = s->mem_used - osize + nsize;
  return p;
}

/* ---- ctx lookup -------------------------------------------------------- */

th_ctx *th_running_ctx(void) { return running_ctx; }

static inline th_ctx **ctx_slot(lua_State *co) { return (th_ctx **)lua_getextraspace(co); }

th_ctx *th_ctx_current(lua_State *L) {
  th_ctx *ctx = *ctx_slot(L);
  return (ctx && ctx->co == L) ? ctx : NULL;
}

th_ctx *th_ctx_check(lua_State *L, const char *what) {
  th_ctx *ctx = th_ctx_current(L);
  if (!ctx)
    luaL_error(L,
               "%s can only wait inside a request, event, job or script coroutine "
               "(not at module load time nor inside a coroutine of your own)",
               what);
  return ctx;
}

/* ---- states ------------------------------------------------------------ */

static void open_lib(lua_State *L, const char *name, lua_CFunction f) {
  luaL_requiref(L, name, f, 1);
  lua_pop(L, 1);
}

/* The bundle environment: pure libraries, a trimmed os, no io, no debug library
 * (it reaches any function's upvalues and locals, the registry, and hooks), no
 * loading of files outside require, no C modules from disk (no cpath, no
 * package.loadlib). The host uses the C debug API itself (hooks, tracebacks). */
static void sandbox(lua_State *L) {
  static const char *drop_globals[] = {"dofile", "loadfile", NULL};
  static const char *keep_os[] = {"time", "date", "clock", "getenv", "difftime", NULL};
  for (const char **g = drop_globals; *g; g++) {
    lua_pushnil(L);
    lua_setglobal(L, *g);
  }
  lua_getglobal(L, "os");
  lua_newtable(L);
  for (const char **k = keep_os; *k; k++) {
    lua_getfield(L, -2, *k);
    lua_setfield(L, -2, *k);
  }
  lua_setglobal(L, "os");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadlib");
  lua_pop(L, 1);
}

/* require "<bundle>.a.b" loads <bundle dir>/a/b.lua (or a/b/init.lua): a bundle's own
 * modules carry the name of its directory, so none can shadow a library of lua/ and no
 * bundle reaches into another's. Upvalues: the prefix ("api."), the search path. */
static int bundle_searcher(lua_State *L) {
  size_t plen;
  const char *prefix = lua_tolstring(L, lua_upvalueindex(1), &plen);
  const char *name = luaL_checkstring(L, 1);
  if (strncmp(name, prefix, plen) != 0 || !name[plen]) {
    lua_pushfstring(L, "no module '%s' in bundle '%s' (its modules are named '%s...')", name,
                    lua_tostring(L, lua_upvalueindex(3)), prefix);
    return 1;
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushstring(L, name + plen);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1; /* searchpath's message: the files it tried */
  const char *file = lua_tostring(L, -2);
  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file,
                      lua_tostring(L, -1));
  lua_pushstring(L, file);
  return 2;
}

/* Put bundle_searcher for `dir` second in package.searchers (after preload). */
static void add_bundle_searcher(lua_State *L, const char *dir) {
  char *real = realpath(dir, NULL);
  const char *base = real ? real : dir;
  size_t len = strlen(base);
  while (len > 1 && base[len - 1] == '/')
    len--;
  size_t start = len;
  while (start > 0 && base[start - 1] != '/')
    start--;
  lua_pushlstring(L, base + start, len - start);
  lua_pushliteral(L, ".");
  lua_concat(L, 2);
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
  lua_pushlstring(L, base + start, len - start);
  lua_pushcclosure(L, bundle_searcher, 3);
  free(real);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushvalue(L, -3);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 3);
}

static void set_path(lua_State *L, const char *dir, th_state_mode mode) {
  luaL_Buffer b;
  if (dir) add_bundle_searcher(L, dir);
  lua_getglobal(L, "package");
  luaL_buffinit(L, &b);
  if (lua_root) {
    luaL_addstring(&b, lua_root);
    luaL_addstring(&b, "/?.lua;");
    luaL_addstring(&b, lua_root);
    luaL_addstring(&b, "/?/init.lua;");
  }
  if (mode == TH_STATE_SCRIPT) {
    lua_getfield(L, -2, "path");
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

static void register_state(th_state *s) {
  if (n_states == cap_states) {
    cap_states = cap_states ? cap_states * 2 : 8;
    all_states = realloc(all_states, sizeof *all_states * (size_t)cap_states);
    if (!all_states) abort();
  }
  all_states[n_states++] = s;
}

static void unregister_state(th_state *s) {
  for (int i = 0; i < n_states; i++)
    if (all_states[i] == s) {
      all_states[i] = all_states[--n_states];
      return;
    }
}

void th_states_signal_stop(void) {
  for (int i = 0; i < n_states; i++)
    th_state_signal_stop(all_states[i]);
}

void th_states_visit(th_state_visit_fn fn, void *arg) {
  for (int i = 0; i < n_states; i++)
    fn(all_states[i], arg);
}

th_state *th_state_new(th_state_mode mode, const char *dir, size_t mem_limit, char *err,
                       size_t errlen) {
  th_state *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->mem_limit = mem_limit;
  s->dir = dir ? strdup(dir) : NULL;
  s->L = lua_newstate(counting_alloc, s);
  if (!s->L) {
    snprintf(err, errlen, "cannot create a Lua state");
    free(s->dir);
    free(s);
    return NULL;
  }
  lua_State *L = s->L;
  *ctx_slot(L) = NULL;
  /* Requests make short-lived garbage: a generational collector handles it for
   * ~20% less CPU per task read than the incremental one (docs/benchmarks.md). */
  if (!th_cfg.lua_gc || strcmp(th_cfg.lua_gc, "incremental")) lua_gc(L, LUA_GCGEN, 0, 0);
  if (mode == TH_STATE_SCRIPT) {
    luaL_openlibs(L);
  } else {
    open_lib(L, LUA_GNAME, luaopen_base);
    open_lib(L, LUA_LOADLIBNAME, luaopen_package);
    open_lib(L, LUA_COLIBNAME, luaopen_coroutine);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
    open_lib(L, LUA_OSLIBNAME, luaopen_os);
    sandbox(L);
    th_budget_open_coroutine(L);
  }
  set_path(L, dir, mode);
  if (preload) preload(L);
  th_budget_install();
  s->req_mt_ref = LUA_NOREF;
  s->manifest_ref = LUA_NOREF;
  register_state(s);
  return s;
}

static void free_ctx_list(th_state *s) {
  while (s->free_ctx) {
    th_ctx *c = s->free_ctx;
    s->free_ctx = c->owner;
    free(c);
  }
  s->nfree = 0;
}

const char *th_state_intern(th_state *s, const char *str) {
  s->interned = realloc(s->interned, sizeof(char *) * (size_t)(s->ninterned + 1));
  if (!s->interned) abort();
  return s->interned[s->ninterned++] = strdup(str);
}

void th_state_free(th_state *s) {
  if (!s) return;
  unregister_state(s);
  for (int i = 0; i < s->ninterned; i++)
    free(s->interned[i]);
  free(s->interned);
  free_ctx_list(s);
  lua_close(s->L);
  free(s->name);
  free(s->dir);
  free(s);
}

void th_state_maybe_close(th_state *s) {
  if (s->retired && s->inflight == 0) th_state_free(s);
}

/* ---- ctx and the scheduler --------------------------------------------- */

th_ctx *th_ctx_new(th_state *s, th_ctx_kind kind) {
  th_ctx *ctx = s->free_ctx;
  if (ctx) {
    s->free_ctx = ctx->owner;
    s->nfree--;
  } else {
    ctx = calloc(1, sizeof *ctx);
    if (!ctx) abort();
    ctx->co = lua_newthread(s->L);
    ctx->co_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
    ctx->state = s;
    *ctx_slot(ctx->co) = ctx;
  }
  ctx->kind = kind;
  ctx->waiting = 0;
  ctx->cancel = NULL;
  ctx->cancel_data = NULL;
  ctx->done = NULL;
  ctx->owner = NULL;
  ctx->request_id[0] = '\0';
  ctx->cpu_used_ns = 0;
  ctx->cpu_total_ns = 0;
  ctx->log_fields = NULL;
  s->inflight++;
  return ctx;
}

void th_ctx_release(th_ctx *ctx) {
  th_state *s = ctx->state;
  int reusable = lua_status(ctx->co) == LUA_OK && !ctx->waiting;
  s->inflight--;
  th_ctx_set_log_fields(ctx, NULL, 0);
  if (reusable && s->nfree < CTX_POOL_MAX && !s->retired) {
    lua_settop(ctx->co, 0);
    ctx->owner = s->free_ctx; /* the free list reuses the owner field */
    s->free_ctx = ctx;
    s->nfree++;
  } else {
    /* A failed coroutine cannot run again: drop it and let the GC take it. */
    luaL_unref(s->L, LUA_REGISTRYINDEX, ctx->co_ref);
    *ctx_slot(ctx->co) = NULL;
    free(ctx);
  }
  th_state_maybe_close(s);
}

static void th__run(th_ctx *ctx, int nargs) {
  int nres = 0;
  th_ctx *outer = running_ctx; /* a primitive may finish one ctx from inside another */
  running_ctx = ctx;
  /* Background tasks live long: their budget is per slice between waits, so a
   * consumer loop is stopped only when one slice runs away. */
  if (ctx->kind == TH_CTX_JOB) ctx->cpu_used_ns = 0;
  ctx->slice_start_ns = th_now_ns();
  lua_State *outer_thread = th_budget_swap(ctx->co);
  int status = lua_resume(ctx->co, NULL, nargs, &nres);
  th_budget_swap(outer_thread);
  uint64_t slice = th_now_ns() - ctx->slice_start_ns;
  ctx->cpu_used_ns += slice;
  ctx->cpu_total_ns += slice;
  running_ctx = outer;
  if (status == LUA_YIELD) {
    if (ctx->waiting) return; /* waiting on a primitive: the loop resumes it */
    /* A bare coroutine.yield() in handler code: nobody would resume it. */
    lua_settop(ctx->co, 0);
    lua_pushliteral(ctx->co, "coroutine.yield() called outside a coroutine of your own");
    ctx->done(ctx, LUA_ERRRUN, 0);
    return;
  }
  if (status != LUA_OK) {
    /* Add the traceback of the failed coroutine below the message. */
    const char *msg = lua_tostring(ctx->co, -1);
    if (!msg) msg = "(error object is not a string)";
    /* Lifted for the few bytes of the traceback: an allocation failing here, out
     * of any protected call, would abort the process (a coroutine that hit the
     * memory cap still holds what it allocated). */
    size_t limit = ctx->state->mem_limit;
    ctx->state->mem_limit = 0;
    luaL_traceback(ctx->co, ctx->co, msg, 0);
    lua_remove(ctx->co, -2);
    ctx->state->mem_limit = limit;
    ctx->done(ctx, status, 0);
    return;
  }
  ctx->done(ctx, LUA_OK, nres);
}

void th_ctx_start(th_ctx *ctx, int nargs) { th__run(ctx, nargs); }

uint64_t th_ctx_cpu_ns(const th_ctx *ctx) {
  uint64_t t = ctx->cpu_total_ns;
  if (ctx == running_ctx) t += th_now_ns() - ctx->slice_start_ns; /* the slice so far */
  return t;
}

static uint64_t charged(uint64_t v, int64_t ns) {
  if (ns < 0 && (uint64_t)(-ns) > v) return 0;
  return v + (uint64_t)ns;
}

void th_ctx_charge_cpu(th_ctx *ctx, int64_t ns) {
  if (ctx == running_ctx) { /* fold in the slice so far: a credit may take from it */
    uint64_t now = th_now_ns();
    ctx->cpu_total_ns += now - ctx->slice_start_ns;
    ctx->cpu_used_ns += now - ctx->slice_start_ns;
    ctx->slice_start_ns = now;
  }
  ctx->cpu_total_ns = charged(ctx->cpu_total_ns, ns);
  ctx->cpu_used_ns = charged(ctx->cpu_used_ns, ns);
}

void th_ctx_set_log_fields(th_ctx *ctx, const char *members, size_t len) {
  free(ctx->log_fields);
  ctx->log_fields = NULL;
  if (!members || !len) return;
  ctx->log_fields = malloc(len + 1);
  if (!ctx->log_fields) abort();
  memcpy(ctx->log_fields, members, len);
  ctx->log_fields[len] = '\0';
}

int th_yield(lua_State *L, th_cancel_fn cancel, void *data) {
  th_ctx *ctx = th_ctx_check(L, "this primitive");
  ctx->waiting = 1;
  ctx->cancel = cancel;
  ctx->cancel_data = data;
  return lua_yield(L, 0);
}

void th_resume(th_ctx *ctx, int nresults) {
  ctx->waiting = 0;
  ctx->cancel = NULL;
  ctx->cancel_data = NULL;
  th__run(ctx, nresults);
}

/* Run `module.loader` style code at load time with the traceback handler and a
 * CPU deadline. Used by bundle.c to load manifests. */
int th_state_pcall_load(th_state *s, int nargs, int nres) {
  lua_State *L = s->L;
  /* No traceback: a start-up failure is one line naming the file and line. */
  s->load_deadline_ns = th_now_ns() + (uint64_t)th_cfg.cpu_budget_ms * 1000000u * 5;
  lua_State *outer_thread = th_budget_swap(L);
  int rc = lua_pcall(L, nargs, nres, 0);
  th_budget_swap(outer_thread);
  s->load_deadline_ns = 0;
  return rc;
}

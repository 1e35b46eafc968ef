/* bundle.c: loading bundles into a generation, and routing within it.
 *
 * A bundle is a directory whose service.lua returns the manifest
 * { name = "...", routes = { {method=, path=, handler=}, ... } }. A generation is
 * the set of states (one per bundle) and the merged route table that the server
 * uses at one time; SIGHUP builds a new one and retires the old, whose states
 * close when their last unit of work ends. The generation owns its routes; each
 * state owns its Lua values (handlers are registry refs in that state).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "host_internal.h"

int th_state_pcall_load(th_state *s, int nargs, int nres);

static const char *methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL};

static int split_pattern(th_route *r, char *err, size_t errlen) {
  const char *p = r->pattern;
  int cap = 4;
  r->segments = malloc(sizeof(char *) * (size_t)cap);
  if (!r->segments) abort();
  r->nseg = 0;
  while (*p == '/') {
    p++;
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 && end) {
      snprintf(err, errlen, "empty segment in path '%s'", r->pattern);
      return -1;
    }
    if (len == 0) break; /* trailing slash, or "/" itself */
    if (r->nseg == cap) {
      cap *= 2;
      r->segments = realloc(r->segments, sizeof(char *) * (size_t)cap);
      if (!r->segments) abort();
    }
    r->segments[r->nseg++] = strndup(p, len);
    p += len;
  }
  return 0;
}

static void free_routes(th_route *routes, int n) {
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < routes[i].nseg; j++)
      free(routes[i].segments[j]);
    free(routes[i].segments);
  }
  free(routes);
}

/* Reads routes from the manifest at the top of s->L into g. */
static int collect_routes(th_generation *g, th_state *s, const char *file, char *err,
                          size_t errlen) {
  lua_State *L = s->L;
  lua_getfield(L, -1, "routes");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: 'routes' must be a table", file);
    return -1;
  }
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    if (!lua_istable(L, -1)) {
      snprintf(err, errlen, "%s: routes[%lld] must be a table {method=, path=, handler=}", file,
               (long long)i);
      return -1;
    }
    lua_getfield(L, -1, "method");
    lua_getfield(L, -2, "path");
    lua_getfield(L, -3, "handler");
    const char *method = lua_tostring(L, -3);
    const char *path = lua_tostring(L, -2);
    int ok_method = 0;
    for (const char **m = methods; method && *m; m++)
      ok_method |= !strcmp(*m, method);
    if (!ok_method) {
      snprintf(err, errlen,
               "%s: routes[%lld]: method must be one of GET HEAD POST PUT PATCH DELETE OPTIONS",
               file, (long long)i);
      return -1;
    }
    if (!path || path[0] != '/') {
      snprintf(err, errlen, "%s: routes[%lld]: path must be a string starting with '/'", file,
               (long long)i);
      return -1;
    }
    if (!lua_isfunction(L, -1)) {
      snprintf(err, errlen, "%s: routes[%lld] (%s %s): handler must be a function", file,
               (long long)i, method, path);
      return -1;
    }
    g->routes = realloc(g->routes, sizeof(th_route) * (size_t)(g->nroutes + 1));
    if (!g->routes) abort();
    th_route *r = &g->routes[g->nroutes];
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->pattern = th_state_intern(s, path);
    r->state = s;
    g->nroutes++;
    lua_pushvalue(L, -1);
    r->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (split_pattern(r, err, errlen) < 0) return -1;
    for (int k = 0; k < g->nroutes - 1; k++) {
      th_route *o = &g->routes[k];
      if (!strcmp(o->method, r->method) && !strcmp(o->pattern, r->pattern)) {
        snprintf(err, errlen, "%s: %s %s is already declared by bundle '%s'", file, method, path,
                 o->state->name);
        return -1;
      }
    }
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
  return 0;
}

static th_state *load_bundle(th_generation *g, const char *dir, char *err, size_t errlen) {
  char file[4096];
  struct stat st;
  snprintf(file, sizeof file, "%s/service.lua", dir);
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: no such bundle directory", dir);
    return NULL;
  }
  if (stat(file, &st) < 0) {
    snprintf(err, errlen, "%s: missing manifest (a bundle needs service.lua)", file);
    return NULL;
  }
  th_state *s = th_state_new(TH_STATE_BUNDLE, dir, th_cfg.bundle_memory * 1024 * 1024, err, errlen);
  if (!s) return NULL;
  s->gen = g;
  lua_State *L = s->L;
  if (luaL_loadfile(L, file) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    th_state_free(s);
    return NULL;
  }
  if (th_state_pcall_load(s, 0, 1) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    th_state_free(s);
    return NULL;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: the manifest must return a table", file);
    th_state_free(s);
    return NULL;
  }
  lua_getfield(L, -1, "name");
  const char *name = lua_tostring(L, -1);
  if (!name || !*name) {
    snprintf(err, errlen, "%s: the manifest needs a non-empty 'name'", file);
    th_state_free(s);
    return NULL;
  }
  s->name = strdup(name);
  lua_pop(L, 1);
  int t = lua_getfield(L, -1, "on_start");
  lua_pop(L, 1);
  if (t != LUA_TNIL && t != LUA_TFUNCTION) {
    snprintf(err, errlen, "%s: 'on_start' must be a function", file);
    th_state_free(s);
    return NULL;
  }
  if (collect_routes(g, s, file, err, errlen) < 0) {
    th_state_free(s);
    return NULL;
  }
  s->manifest_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return s;
}

th_generation *th_generation_load(char **dirs, int n) {
  char err[2048];
  th_generation *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->states = calloc((size_t)n, sizeof(th_state *));
  if (!g->states) abort();
  for (int i = 0; i < n; i++) {
    /* Trim trailing slashes so names and messages read well. */
    char *dir = strdup(dirs[i]);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
      dir[--len] = '\0';
    int before = g->nroutes;
    th_state *s = load_bundle(g, dir, err, sizeof err);
    free(dir);
    if (!s) {
      fprintf(stderr, "todo-host: %s\n", err);
      /* Routes of the failed bundle point at a freed state: drop them. */
      g->nroutes = before;
      th_generation_retire(g);
      return NULL;
    }
    for (int k = 0; k < g->nstates; k++)
      if (!strcmp(g->states[k]->name, s->name)) {
        fprintf(stderr, "todo-host: %s: bundle name '%s' is used twice\n", s->dir, s->name);
        g->states[g->nstates++] = s;
        th_generation_retire(g);
        return NULL;
      }
    g->states[g->nstates++] = s;
  }
  return g;
}

void th_generation_start(th_generation *g) {
  for (int i = 0; i < g->nstates; i++) {
    th_state *s = g->states[i];
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->manifest_ref);
    if (lua_getfield(L, -1, "on_start") == LUA_TFUNCTION) {
      lua_remove(L, -2);
      th_task_start(s, L, 0, "on_start");
    } else {
      lua_pop(L, 2);
    }
  }
}

void th_generation_retire(th_generation *g) {
  if (!g) return;
  free_routes(g->routes, g->nroutes);
  for (int i = 0; i < g->nstates; i++) {
    th_state_signal_stop(g->states[i]);
    g->states[i]->retired = 1;
    g->states[i]->gen = NULL;
    th_state_maybe_close(g->states[i]);
  }
  free(g->states);
  free(g);
}

/* Matches segment by segment without allocating. */
static int route_matches(const th_route *r, const char *path, size_t len) {
  const char *p = path, *end = path + len;
  int seg = 0;
  while (p < end && *p == '/') {
    p++;
    const char *s = p;
    while (p < end && *p != '/')
      p++;
    size_t slen = (size_t)(p - s);
    if (slen == 0) {
      if (p == end) break; /* trailing slash */
      return 0;
    }
    if (seg >= r->nseg) return 0;
    const char *want = r->segments[seg++];
    if (want[0] == ':') continue;
    if (strlen(want) != slen || memcmp(want, s, slen) != 0) return 0;
  }
  return seg == r->nseg;
}

const th_route *th_route_match(const th_generation *g, const char *method, const char *path,
                               size_t path_len, int *method_mismatch) {
  *method_mismatch = 0;
  const th_route *head_fallback = NULL;
  for (int i = 0; i < g->nroutes; i++) {
    const th_route *r = &g->routes[i];
    if (!route_matches(r, path, path_len)) continue;
    if (!strcmp(r->method, method)) return r;
    if (!strcmp(method, "HEAD") && !strcmp(r->method, "GET")) head_fallback = r;
    *method_mismatch = 1;
  }
  if (head_fallback) *method_mismatch = 0;
  return head_fallback;
}

/* Percent-decoded :params of a matched route, as a table. */
void th_route_push_params(lua_State *L, const th_route *r, const char *path, size_t len) {
  const char *p = path, *end = path + len;
  int seg = 0;
  lua_createtable(L, 0, 2);
  while (p < end && *p == '/' && seg < r->nseg) {
    p++;
    const char *s = p;
    while (p < end && *p != '/')
      p++;
    const char *want = r->segments[seg++];
    if (want[0] != ':') continue;
    th_push_urldecoded(L, s, (size_t)(p - s), 0);
    lua_setfield(L, -2, want + 1);
  }
}

/* The methods declared for a path, for the Allow header of a 405. */
const char *th_route_allowed(const th_generation *g, const char *path, size_t len) {
  static char allow[64];
  allow[0] = '\0';
  for (const char **m = methods; *m; m++) {
    int declared = 0;
    for (int i = 0; i < g->nroutes && !declared; i++)
      declared = !strcmp(g->routes[i].method, *m) && route_matches(&g->routes[i], path, len);
    if (!strcmp(*m, "HEAD") && !declared)
      for (int i = 0; i < g->nroutes && !declared; i++)
        declared = !strcmp(g->routes[i].method, "GET") && route_matches(&g->routes[i], path, len);
    if (!declared) continue;
    if (allow[0]) strcat(allow, ", ");
    strcat(allow, *m);
  }
  return allow;
}

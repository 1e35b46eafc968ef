/* prim_task.c: the `task` module: background units of work.
 *
 * task.spawn(fn, ...) runs fn in a new coroutine of the same bundle state
 * (kind TH_CTX_JOB), independent of any request: outbox relays, event
 * consumers, scheduled jobs. The manifest's on_start runs this way too (see
 * th_generation_start). A background task ends by returning; the host asks it
 * to with task.stopping(), which turns true when its state is retired by a
 * reload or the process drains, and task.wait(seconds), a sleep that ends early
 * when that happens. The process waits for every background task before it
 * exits (bounded by DRAIN_TIMEOUT_MS).
 *
 * Owns: one heap `waiter` per task.wait (timer freed in its close callback).
 */
#include <stdlib.h>

#include "host_internal.h"
#include "primitives.h"

typedef struct waiter {
  uv_timer_t timer;
  th_ctx *ctx;
  struct waiter *next, *prev;
} waiter;

static int jobs_active;
static void (*on_jobs_idle)(void);
static waiter *waiters; /* every task.wait in progress, across states */

int th_jobs_active(void) { return jobs_active; }
void th_jobs_on_idle(void (*cb)(void)) { on_jobs_idle = cb; }

static void unlink_waiter(waiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    waiters = w->next;
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = NULL;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

static void wake(waiter *w, int stopping) {
  th_ctx *ctx = w->ctx;
  unlink_waiter(w);
  uv_close((uv_handle_t *)&w->timer, on_closed);
  lua_pushboolean(ctx->co, stopping);
  th_resume(ctx, 1);
}

static void on_fire(uv_timer_t *t) { wake(t->data, 0); }

static void cancel_wait(th_ctx *ctx, void *data) {
  waiter *w = data;
  (void)ctx;
  unlink_waiter(w);
  uv_close((uv_handle_t *)&w->timer, on_closed);
}

/* Ask every background task of s to stop, waking those in task.wait. */
void th_state_signal_stop(th_state *s) {
  s->stopping = 1;
  waiter *w = waiters;
  while (w) {
    waiter *next = w->next;
    if (w->ctx->state == s) {
      wake(w, 1);
      next = waiters; /* waking ran Lua, which may have changed the list */
    }
    w = next;
  }
}

static void on_job_done(th_ctx *ctx, int status, int nres) {
  (void)nres;
  if (status != LUA_OK)
    th_log(ctx, "error", "background task failed: %s", lua_tostring(ctx->co, -1));
  th_ctx_release(ctx);
  if (--jobs_active == 0 && on_jobs_idle) on_jobs_idle();
}

static th_state *state_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

/* Start fn (at the top of L with nargs arguments above it) as a job. */
void th_task_start(th_state *s, lua_State *L, int nargs, const char *name) {
  th_ctx *ctx = th_ctx_new(s, TH_CTX_JOB);
  ctx->done = on_job_done;
  snprintf(ctx->request_id, sizeof ctx->request_id, "%s", name ? name : "task");
  lua_xmove(L, ctx->co, nargs + 1);
  jobs_active++;
  th_ctx_start(ctx, nargs);
}

/*** Run a function in the background, in its own coroutine.
 * Errors are logged with their traceback; they do not stop the process.
 * @tparam function fn
 * @param ... arguments for fn
 */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  th_state *s = state_of(L);
  if (s->stopping) return luaL_error(L, "task.spawn: the bundle is stopping");
  th_task_start(s, L, lua_gettop(L) - 1, "task");
  return 0;
}

/*** Whether background work should wind down (reload or shutdown).
 * @treturn boolean
 */
static int l_stopping(lua_State *L) {
  lua_pushboolean(L, state_of(L)->stopping);
  return 1;
}

/*** Sleep up to `seconds`, ending early when the task should stop.
 * @tparam number seconds
 * @treturn boolean true when woken because the task should stop
 */
static int l_wait(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_argcheck(L, secs >= 0 && secs <= 86400, 1, "expected 0 to 86400 seconds");
  th_ctx *ctx = th_ctx_check(L, "task.wait");
  if (ctx->state->stopping) {
    lua_pushboolean(L, 1);
    return 1;
  }
  waiter *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->ctx = ctx;
  uv_timer_init(th_loop(), &w->timer);
  w->timer.data = w;
  uv_update_time(th_loop());
  uv_timer_start(&w->timer, on_fire, (uint64_t)(secs * 1000 + 0.5), 0);
  w->next = waiters;
  if (waiters) waiters->prev = w;
  waiters = w;
  return th_yield(L, cancel_wait, w);
}

int luaopen_th_task(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"spawn", l_spawn}, {"stopping", l_stopping}, {"wait", l_wait}, {NULL, NULL}};
  luaL_newlib(L, fns);
  th_task_sync_open(L); /* defer, event: prim_task_sync.c */
  return 1;
}

/* tasks.c: background units of work (kind TH_CTX_JOB), independent of any
 * request: outbox relays, event consumers, scheduled jobs, a manifest's
 * on_start (th_generation_start). A background task ends by returning; the host
 * asks it to by setting its state's `stopping` (a reload retired the state, or
 * the process drains) and by waking its task.wait early. The process waits for
 * every background task before it exits (bounded by DRAIN_TIMEOUT_MS).
 * The Lua API (task.spawn, task.stopping, task.wait) is prim/task.c.
 *
 * Owns: the count of live jobs and the list of every task.wait in progress
 * (th_waits, runtime/wait.c, across states).
 */
#include <stdio.h>

#include "base/list.h"
#include "runtime/host_internal.h"
#include "runtime/wait.h"

static int jobs_active;
static void (*on_jobs_idle)(void);
static th_list waiters = TH_LIST_INIT(waiters); /* th_wait.link of each task.wait */

int th_jobs_active(void) { return jobs_active; }
void th_jobs_on_idle(void (*cb)(void)) { on_jobs_idle = cb; }

static void on_waited(th_wait *w) {
  lua_pushboolean(w->ctx->co, 0);
  th_wait_finish(w, 1);
}

/* Ask every background task of s to stop, waking those in task.wait. */
void th_state_signal_stop(th_state *s) {
  s->stopping = 1;
  th_list *n = th_list_first(&waiters);
  while (n) {
    th_wait *w = th_list_entry(n, th_wait, link);
    if (w->ctx->state == s) {
      lua_pushboolean(w->ctx->co, 1);
      th_wait_finish(w, 1);
      n = th_list_first(&waiters); /* waking ran Lua, which may have changed the list */
      continue;
    }
    n = th_list_next(&waiters, n);
  }
}

static void on_job_done(th_ctx *ctx, int status, int nres) {
  (void)nres;
  if (status != LUA_OK)
    th_log(ctx, "error", "background task failed: %s", lua_tostring(ctx->co, -1));
  th_ctx_release(ctx);
  if (--jobs_active == 0 && on_jobs_idle) on_jobs_idle();
}

void th_task_start(th_state *s, lua_State *L, int nargs, const char *name) {
  th_ctx *ctx = th_ctx_new(s, TH_CTX_JOB);
  ctx->done = on_job_done;
  snprintf(ctx->request_id, sizeof ctx->request_id, "%s", name ? name : "task");
  lua_xmove(L, ctx->co, nargs + 1);
  jobs_active++;
  th_ctx_start(ctx, nargs);
}

int th_task_wait(lua_State *L, double seconds) {
  if (th_ctx_check(L, "task.wait")->state->stopping) {
    lua_pushboolean(L, 1);
    return 1;
  }
  th_wait *w = th_wait_new(L, "task.wait", on_waited, NULL);
  th_list_push_front(&waiters, &w->link);
  return th_wait_yield(L, w, seconds);
}

/* budget.c: the CPU budget of a unit of work (CPU_BUDGET_MS), checked without
 * a hook on every Lua instruction.
 *
 * A Lua count hook, even one that fires every few thousand instructions, makes
 * the VM call into the debug machinery on every instruction and every return:
 * ~10% of a task read's host CPU (docs/benchmarks.md). So no hook is set while
 * code runs normally. An interval timer on the process's user CPU time
 * (ITIMER_VIRTUAL: it does not tick while the worker sleeps) raises SIGVTALRM;
 * the handler arms a one-instruction hook on the thread that runs Lua at that
 * moment (lua_sethook is meant to be called from signal handlers), and the
 * hook compares the running unit's time with its budget, raises the budget
 * error, or disarms itself.
 *
 * "The thread that runs Lua" is tracked here: host.c swaps it around every
 * resume and module load, and the sandbox's coroutine.resume / coroutine.wrap
 * swap it around coroutines of a handler's own, so a loop inside one of those
 * is stopped too (and counts against the handler's budget).
 */
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include "runtime/config.h"
#include "runtime/host_internal.h"

static lua_State *volatile running_thread; /* innermost thread executing Lua */
static pid_t installed_pid;                /* interval timers do not survive fork */

lua_State *th_budget_swap(lua_State *L) {
  lua_State *prev = running_thread;
  running_thread = L;
  return prev;
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  /* The running ctx, not the coroutine's own: coroutines created inside a
   * handler count against the handler's budget. */
  th_ctx *ctx = th_running_ctx();
  uint64_t t = th_now_ns();
  uint64_t budget = (uint64_t)th_cfg.cpu_budget_ms * 1000000u;
  if (ctx) {
    if (ctx->kind != TH_CTX_SCRIPT && ctx->cpu_used_ns + (t - ctx->slice_start_ns) > budget) {
      lua_sethook(L, NULL, 0, 0);
      luaL_error(L, "CPU budget of %d ms exceeded", th_cfg.cpu_budget_ms);
    }
  } else {
    /* No ctx: module loading on a state's main thread. */
    void *ud;
    lua_getallocf(L, &ud);
    th_state *s = ud;
    if (s->load_deadline_ns && t > s->load_deadline_ns) {
      lua_sethook(L, NULL, 0, 0);
      luaL_error(L, "CPU budget of %d ms exceeded while loading", th_cfg.cpu_budget_ms);
    }
  }
  lua_sethook(L, NULL, 0, 0); /* within budget: run free until the next tick */
}

static void on_cpu_tick(int sig) {
  (void)sig;
  lua_State *L = running_thread;
  if (L) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
}

void th_budget_install(void) {
  pid_t pid = getpid();
  if (installed_pid == pid) return;
  installed_pid = pid;
  struct sigaction sa = {0};
  sa.sa_handler = on_cpu_tick;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGVTALRM, &sa, NULL);
  /* A tenth of the budget, 1-100 ms: a runaway loop is stopped within that
   * much CPU time past its budget; 10 ticks per busy second at the default. */
  long us = (long)th_cfg.cpu_budget_ms * 100;
  if (us < 1000) us = 1000;
  if (us > 100000) us = 100000;
  struct itimerval it = {{us / 1000000, us % 1000000}, {us / 1000000, us % 1000000}};
  setitimer(ITIMER_VIRTUAL, &it, NULL);
}

/* ---- coroutines of a handler's own ---------------------------------------- */

static lua_CFunction base_resume; /* the coroutine library's own */

/* coroutine.resume(co, ...): the library's, with co as the running thread. */
static int tracked_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  if (!co) return base_resume(L); /* raises the library's argument error */
  lua_State *prev = th_budget_swap(co);
  int n = base_resume(L); /* reports failures as results; never raises */
  th_budget_swap(prev);
  return n;
}

/* The function coroutine.wrap returns: upvalue 1 the thread, 2 the library's
 * wrapper function. Its errors propagate, so it runs under pcall to restore
 * the running thread before rethrowing. */
static int tracked_wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_State *prev = th_budget_swap(co);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  th_budget_swap(prev);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

/* coroutine.wrap(f): the library's wrapper (upvalue 1: the library's wrap),
 * called through tracked_wrap_call with the thread it resumes. */
static int tracked_wrap(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1); /* the library checks f and makes the thread */
  if (!lua_getupvalue(L, -1, 1) || !lua_isthread(L, -1))
    return luaL_error(L, "coroutine.wrap: unexpected library wrapper");
  lua_insert(L, -2); /* thread, wrapper */
  lua_pushcclosure(L, tracked_wrap_call, 2);
  return 1;
}

void th_budget_open_coroutine(lua_State *L) {
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  base_resume = lua_tocfunction(L, -1);
  lua_pop(L, 1);
  lua_pushcfunction(L, tracked_resume);
  lua_setfield(L, -2, "resume");
  lua_getfield(L, -1, "wrap");
  lua_pushcclosure(L, tracked_wrap, 1);
  lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
}

/* prim/task.c: the `task` module: background units of work (runtime/tasks.c).
 *
 * task.spawn(fn, ...) runs fn in a new coroutine of the same bundle state,
 * independent of any request; task.stopping() turns true when the state is
 * retired by a reload or the process drains; task.wait(seconds) is a sleep that
 * ends early when that happens. task.defer and task.event: prim/task_sync.c.
 */
#include "prim/primitives.h"
#include "runtime/host_internal.h"

static th_state *state_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
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
  return th_task_wait(L, secs);
}

int luaopen_th_task(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"spawn", l_spawn}, {"stopping", l_stopping}, {"wait", l_wait}, {NULL, NULL}};
  luaL_newlib(L, fns);
  th_task_sync_open(L); /* defer, event: prim/task_sync.c */
  return 1;
}

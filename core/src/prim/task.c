/* prim/task.c: the `task` module: background units of work (runtime/tasks.c).
 *
 * task.spawn(fn, ...) runs fn in a new coroutine of the same bundle state,
 * independent of any request; task.stopping() turns true when the state is
 * retired by a reload or the process drains; task.wait(seconds) is a sleep that
 * ends early when that happens. task.defer and task.event: prim/task_sync.c.
 *
 * The running unit's own accounts, for work one unit does for many (core/lua/batch.lua
 * shares a batch's CPU time and logs it under every member's request id):
 * task.cpu_used(), task.charge_cpu(ns), task.request_id(), task.log_context(fields).
 */
#include "json/json.h"
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

/*** Lua run time of the running unit of work so far, with what was charged to it.
 * @treturn integer nanoseconds
 */
static int l_cpu_used(lua_State *L) {
  th_ctx *ctx = th_ctx_check(L, "task.cpu_used");
  lua_pushinteger(L, (lua_Integer)th_ctx_cpu_ns(ctx));
  return 1;
}

/*** Charge CPU time to the running unit (negative: give it back), against its
 * CPU budget as well; its account never goes below zero.
 * @tparam integer ns nanoseconds
 */
static int l_charge_cpu(lua_State *L) {
  lua_Integer ns = luaL_checkinteger(L, 1);
  th_ctx_charge_cpu(th_ctx_check(L, "task.charge_cpu"), (int64_t)ns);
  return 0;
}

/*** The request id of the running unit (its log lines carry it), or nil.
 * @treturn string|nil
 */
static int l_request_id(lua_State *L) {
  th_ctx *ctx = th_ctx_current(L);
  if (ctx && ctx->request_id[0])
    lua_pushstring(L, ctx->request_id);
  else
    lua_pushnil(L);
  return 1;
}

/*** Fields added to every log line of the running unit from now on (nil: none).
 * @tparam table|nil fields e.g. {request_ids = {...}}
 */
static int l_log_context(lua_State *L) {
  th_ctx *ctx = th_ctx_check(L, "task.log_context");
  if (lua_isnoneornil(L, 1)) {
    th_ctx_set_log_fields(ctx, NULL, 0);
    return 0;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  th_buf b = {0};
  if (th_json_encode(L, 1, &b) < 0) {
    th_buf_free(&b);
    return luaL_error(L, "task.log_context: %s", lua_tostring(L, -1));
  }
  /* An object "{...}": keep its members. */
  if (b.len > 2 && b.data[0] == '{')
    th_ctx_set_log_fields(ctx, b.data + 1, b.len - 2);
  else
    th_ctx_set_log_fields(ctx, NULL, 0);
  th_buf_free(&b);
  return 0;
}

int luaopen_th_task(lua_State *L) {
  static const luaL_Reg fns[] = {{"spawn", l_spawn},
                                 {"stopping", l_stopping},
                                 {"wait", l_wait},
                                 {"cpu_used", l_cpu_used},
                                 {"charge_cpu", l_charge_cpu},
                                 {"request_id", l_request_id},
                                 {"log_context", l_log_context},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  th_task_sync_open(L); /* defer, event: prim/task_sync.c */
  return 1;
}

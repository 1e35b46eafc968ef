/* prim/timer.c: the `timer` module: sleep (a th_wait, runtime/wait.c) and clocks. */
#include <time.h>

#include "prim/primitives.h"
#include "runtime/host.h"
#include "runtime/wait.h"

static void on_slept(th_wait *w) {
  lua_pushboolean(w->ctx->co, 1);
  th_wait_finish(w, 1);
}

/*** Suspend the current unit of work for a while; the loop serves others.
 * @tparam number seconds (0 yields to the loop once)
 * @treturn boolean true
 */
static int l_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_argcheck(L, secs >= 0 && secs <= 86400, 1, "expected 0 to 86400 seconds");
  th_wait *w = th_wait_new(L, "timer.sleep", on_slept, NULL);
  return th_wait_yield(L, w, secs);
}

/*** Wall-clock time in seconds since the epoch, with sub-second precision.
 * @treturn number
 */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/*** Monotonic clock in seconds, for measuring durations.
 * @treturn number
 */
static int l_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

int luaopen_th_timer(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sleep", l_sleep}, {"now", l_now}, {"monotonic", l_monotonic}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

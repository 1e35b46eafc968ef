/* prim_timer.c: the `timer` module: sleep (yields the coroutine on a uv_timer)
 * and clocks. Each sleep owns one heap uv_timer_t, freed in its close callback;
 * the cancel hook closes it without resuming. */
#include <stdlib.h>
#include <time.h>

#include "host.h"
#include "primitives.h"

typedef struct sleeper {
  uv_timer_t timer;
  th_ctx *ctx;
} sleeper;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_fire(uv_timer_t *t) {
  sleeper *s = t->data;
  th_ctx *ctx = s->ctx;
  uv_close((uv_handle_t *)&s->timer, on_closed);
  lua_pushboolean(ctx->co, 1);
  th_resume(ctx, 1);
}

static void cancel_sleep(th_ctx *ctx, void *data) {
  sleeper *s = data;
  (void)ctx;
  uv_close((uv_handle_t *)&s->timer, on_closed);
}

/*** Suspend the current unit of work for a while; the loop serves others.
 * @tparam number seconds (0 yields to the loop once)
 * @treturn boolean true
 */
static int l_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  luaL_argcheck(L, secs >= 0 && secs <= 86400, 1, "expected 0 to 86400 seconds");
  th_ctx *ctx = th_ctx_check(L, "timer.sleep");
  sleeper *s = malloc(sizeof *s);
  if (!s) abort();
  s->ctx = ctx;
  uv_timer_init(th_loop(), &s->timer);
  s->timer.data = s;
  /* The loop's clock is cached per turn; a long Lua run would make the timer
   * fire early without this. */
  uv_update_time(th_loop());
  uv_timer_start(&s->timer, on_fire, (uint64_t)(secs * 1000 + 0.5), 0);
  return th_yield(L, cancel_sleep, s);
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

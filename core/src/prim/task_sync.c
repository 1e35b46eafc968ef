/* prim/task_sync.c: `task.defer` and `task.event`, the two ways one unit of work
 * waits for another without a timer (part of the `task` module, prim/task.c).
 *
 * task.defer() yields until the loop has handled every I/O callback that was ready
 * in this turn: the coroutine is resumed in the turn's check phase (after poll).
 * Calls made by many requests that arrived together thus meet before any of them
 * goes to the database (lua/ batch coalescing is built on it).
 * task.event() is a one-shot signal: ev:wait() yields until some other coroutine
 * calls ev:set(); every waiter is then resumed in the same check phase. A wake-up
 * never resumes a coroutine from inside another one's Lua call.
 *
 * Owns: one heap `parked` per waiting coroutine (freed when resumed, or by the
 * cancel hook); the check and idle handles (closed by th_task_sync_shutdown). The
 * idle handle is active while anything is queued, so that the loop polls without
 * blocking when a wake-up was queued outside the poll phase.
 */
#include <stdlib.h>

#include "base/list.h"
#include "prim/primitives.h"
#include "runtime/host.h"

#define EVENT_MT "th.task.event"

typedef struct parked {
  th_ctx *ctx;
  th_list link; /* in an event's waiters, the ready queue, or a turn's snapshot */
} parked;

typedef struct event {
  int set;
  th_list waiters;
} event;

static th_list ready = TH_LIST_INIT(ready);
static uv_check_t ready_check;
static uv_idle_t ready_idle;
static int handles_open;

static void on_idle(uv_idle_t *h) { (void)h; /* only keeps the poll from blocking */ }

/* Resume everything queued before this check phase; what those coroutines queue
 * now waits for the next turn (the idle handle makes that turn come at once). */
static void on_check(uv_check_t *h) {
  (void)h;
  th_list turn;
  th_list_init(&turn);
  th_list_move_all(&turn, &ready);
  th_list *n;
  while ((n = th_list_first(&turn))) {
    parked *p = th_list_entry(n, parked, link);
    th_list_remove(n);
    th_ctx *ctx = p->ctx;
    free(p);
    th_resume(ctx, 0);
  }
  if (th_list_empty(&ready)) {
    uv_idle_stop(&ready_idle);
    uv_check_stop(&ready_check);
  }
}

static void ready_push(parked *p) {
  if (!handles_open) {
    uv_check_init(th_loop(), &ready_check);
    uv_idle_init(th_loop(), &ready_idle);
    handles_open = 1;
  }
  th_list_push_back(&ready, &p->link);
  uv_check_start(&ready_check, on_check);
  uv_idle_start(&ready_idle, on_idle);
}

static void cancel_parked(th_ctx *ctx, void *data) {
  parked *p = data;
  (void)ctx;
  th_list_remove(&p->link);
  free(p);
}

static parked *park_new(th_ctx *ctx) {
  parked *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->ctx = ctx;
  th_list_init(&p->link);
  return p;
}

/*** Wait until the loop has handled the I/O that is ready now (the end of this
 * loop turn), then go on. Work that arrived in the same turn runs meanwhile.
 * @function defer
 */
static int l_defer(lua_State *L) {
  th_ctx *ctx = th_ctx_check(L, "task.defer");
  parked *p = park_new(ctx);
  ready_push(p);
  return th_yield(L, cancel_parked, p);
}

/*** A one-shot signal between coroutines of one bundle state.
 * @function event
 * @return an event: `ev:wait()`, `ev:set()`, `ev:is_set()`
 */
static int l_event(lua_State *L) {
  event *ev = lua_newuserdatauv(L, sizeof *ev, 0);
  ev->set = 0;
  th_list_init(&ev->waiters);
  luaL_setmetatable(L, EVENT_MT);
  return 1;
}

/* Move every waiter of ev to the ready queue. */
static void event_release(event *ev) {
  th_list *n;
  while ((n = th_list_first(&ev->waiters))) {
    th_list_remove(n);
    ready_push(th_list_entry(n, parked, link));
  }
}

/*** Wait until the event is set (returns at once when it is).
 * @function event:wait
 */
static int l_event_wait(lua_State *L) {
  event *ev = luaL_checkudata(L, 1, EVENT_MT);
  if (ev->set) return 0;
  th_ctx *ctx = th_ctx_check(L, "event:wait");
  parked *p = park_new(ctx);
  th_list_push_back(&ev->waiters, &p->link);
  return th_yield(L, cancel_parked, p);
}

/*** Set the event: every waiter goes on at the end of this loop turn. Setting it
 * again does nothing.
 * @function event:set
 */
static int l_event_set(lua_State *L) {
  event *ev = luaL_checkudata(L, 1, EVENT_MT);
  ev->set = 1;
  event_release(ev);
  return 0;
}

/*** Whether the event is set.
 * @function event:is_set
 * @treturn boolean
 */
static int l_event_is_set(lua_State *L) {
  event *ev = luaL_checkudata(L, 1, EVENT_MT);
  lua_pushboolean(L, ev->set);
  return 1;
}

/* A waiter keeps its event reachable (it is on the waiter's stack), so this finds
 * none in practice; if it did, they go on rather than wait for ever. */
static int l_event_gc(lua_State *L) {
  event *ev = luaL_checkudata(L, 1, EVENT_MT);
  event_release(ev);
  return 0;
}

void th_task_sync_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"wait", l_event_wait}, {"set", l_event_set}, {"is_set", l_event_is_set}, {NULL, NULL}};
  if (luaL_newmetatable(L, EVENT_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_event_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_defer);
  lua_setfield(L, -2, "defer");
  lua_pushcfunction(L, l_event);
  lua_setfield(L, -2, "event");
}

void th_task_sync_shutdown(void) {
  if (!handles_open) return;
  handles_open = 0;
  uv_close((uv_handle_t *)&ready_check, NULL);
  uv_close((uv_handle_t *)&ready_idle, NULL);
}

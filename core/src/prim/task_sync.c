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
 * cancel hook). Resuming is the runtime's one resume-later queue (runtime/later.h,
 * its check phase: TH_LATER_AFTER_POLL).
 */
#include <stdlib.h>

#include "base/list.h"
#include "prim/primitives.h"
#include "runtime/host.h"
#include "runtime/later.h"

#define EVENT_MT "th.task.event"

typedef struct parked {
  th_later later; /* in the resume-later queue */
  th_ctx *ctx;
  th_list wait_link; /* in an event's waiters */
} parked;

typedef struct event {
  int set;
  th_list waiters;
} event;

static int parked_results(th_later *l, lua_State *co) {
  free(l); /* later is the first member of parked */
  return co ? 0 : -1;
}

static void ready_push(parked *p) {
  th_later_queue(&p->later, p->ctx, TH_LATER_AFTER_POLL, parked_results);
}

static void cancel_parked(th_ctx *ctx, void *data) {
  parked *p = data;
  (void)ctx;
  th_list_remove(&p->wait_link);
  th_later_remove(&p->later);
  free(p);
}

static parked *park_new(th_ctx *ctx) {
  parked *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->ctx = ctx;
  th_list_init(&p->wait_link);
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
    ready_push(th_list_entry(n, parked, wait_link));
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
  th_list_push_back(&ev->waiters, &p->wait_link);
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

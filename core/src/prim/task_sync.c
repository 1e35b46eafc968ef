/* prim_task_sync.c: `task.defer` and `task.event`, the two ways one unit of work
 * waits for another without a timer (part of the `task` module, prim_task.c).
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

#include "host_internal.h"
#include "primitives.h"

#define EVENT_MT "th.task.event"

typedef struct parked parked;
typedef struct parked_list {
  parked *head, *tail;
} parked_list;

struct parked {
  th_ctx *ctx;
  parked *next, *prev;
  parked_list *list; /* an event's waiters, the ready queue, or a turn's snapshot */
};

typedef struct event {
  int set;
  parked_list waiters;
} event;

static parked_list ready;
static uv_check_t ready_check;
static uv_idle_t ready_idle;
static int handles_open;

static void pl_push(parked_list *l, parked *p) {
  p->list = l;
  p->next = NULL;
  p->prev = l->tail;
  if (l->tail)
    l->tail->next = p;
  else
    l->head = p;
  l->tail = p;
}

static void pl_remove(parked *p) {
  parked_list *l = p->list;
  if (p->prev)
    p->prev->next = p->next;
  else
    l->head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    l->tail = p->prev;
  p->next = p->prev = NULL;
  p->list = NULL;
}

static void on_idle(uv_idle_t *h) { (void)h; /* only keeps the poll from blocking */ }

/* Resume everything queued before this check phase; what those coroutines queue
 * now waits for the next turn (the idle handle makes that turn come at once). */
static void on_check(uv_check_t *h) {
  (void)h;
  parked_list turn = ready;
  ready.head = ready.tail = NULL;
  for (parked *p = turn.head; p; p = p->next)
    p->list = &turn;
  parked *p;
  while ((p = turn.head)) {
    pl_remove(p);
    th_ctx *ctx = p->ctx;
    free(p);
    th_resume(ctx, 0);
  }
  if (!ready.head) {
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
  pl_push(&ready, p);
  uv_check_start(&ready_check, on_check);
  uv_idle_start(&ready_idle, on_idle);
}

static void cancel_parked(th_ctx *ctx, void *data) {
  parked *p = data;
  (void)ctx;
  if (p->list) pl_remove(p);
  free(p);
}

static parked *park_new(th_ctx *ctx) {
  parked *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->ctx = ctx;
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
  ev->waiters.head = ev->waiters.tail = NULL;
  luaL_setmetatable(L, EVENT_MT);
  return 1;
}

/* Move every waiter of ev to the ready queue. */
static void event_release(event *ev) {
  parked *p;
  while ((p = ev->waiters.head)) {
    pl_remove(p);
    ready_push(p);
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
  pl_push(&ev->waiters, p);
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

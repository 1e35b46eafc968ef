/* prim/pg/listen.c: LISTEN/NOTIFY listeners of the pg primitive ("pg.core").
 *
 * listener(conn) takes a pooled connection on which LISTEN ran out of the pool
 * (th__pg_conn_detach). Owns: every listener (malloc'd, freed by the Lua
 * handle's __gc/close), its PGconn (PQfinish in listener_close_io) and uv_poll_t
 * (freed in the poll's close callback). Each listener:wait is a th_wait
 * (runtime/wait.c) linked in the listener's `waits`. th__pg_listeners_shutdown
 * closes every listener's socket; the handles free the structs later.
 */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "prim/pg/pg_internal.h"
#include "runtime/host.h"
#include "runtime/wait.h"

#define LISTENER_MT "th.pg.listener"

static void poll_close_cb(uv_handle_t *h) { free(h); }

typedef struct listener {
  PGconn *pg;
  uv_poll_t *poll; /* NULL once closed */
  int64_t gen;     /* notifications received so far */
  int broken;
  char err[256];
  th_list waits; /* th_wait.link of each listener:wait */
  th_list link;  /* in `listeners` while its socket is open */
} listener;

static th_list listeners = TH_LIST_INIT(listeners);

/* Resume every waiter: with the generation, or with nil, err when broken. The
 * waits are moved out and what the waiters get is copied first: resumed code may
 * wait again or close the listener, which frees l (so l is not touched after the
 * first resume). */
static void listener_wake_all(listener *l) {
  th_list waits;
  th_list_init(&waits);
  th_list_move_all(&waits, &l->waits);
  int broken = l->broken;
  lua_Integer gen = (lua_Integer)l->gen;
  char err[sizeof l->err];
  snprintf(err, sizeof err, "%s", l->err[0] ? l->err : "connection lost");
  th_list *n;
  while ((n = th_list_first(&waits))) {
    th_wait *w = th_list_entry(n, th_wait, link);
    lua_State *co = w->ctx->co;
    lua_checkstack(co, 2);
    if (broken) {
      lua_pushnil(co);
      lua_pushstring(co, err);
      th_wait_finish(w, 2);
    } else {
      lua_pushinteger(co, gen);
      th_wait_finish(w, 1);
    }
  }
}

static void listener_close_io(listener *l) {
  if (l->poll) {
    uv_close((uv_handle_t *)l->poll, poll_close_cb);
    l->poll = NULL;
  }
  if (l->pg) PQfinish(l->pg);
  l->pg = NULL;
  th_list_remove(&l->link);
}

static void listener_fail(listener *l, const char *why) {
  if (!l->broken) th__pg_copy_line(l->err, sizeof l->err, why && *why ? why : "connection lost");
  l->broken = 1;
  th_log(NULL, "warn", "pg: listener connection lost: %s", l->err);
  listener_close_io(l);
  listener_wake_all(l);
}

static void on_listener_poll(uv_poll_t *h, int status, int events) {
  listener *l = h->data;
  if (status < 0) {
    listener_fail(l, uv_strerror(status));
    return;
  }
  if ((events & UV_READABLE) && !PQconsumeInput(l->pg)) {
    listener_fail(l, PQerrorMessage(l->pg));
    return;
  }
  int got = 0;
  PGnotify *n;
  while ((n = PQnotifies(l->pg))) {
    PQfreemem(n);
    got++;
  }
  PGresult *r;
  while (!PQisBusy(l->pg) && (r = PQgetResult(l->pg)))
    PQclear(r);
  if (PQstatus(l->pg) == CONNECTION_BAD) {
    listener_fail(l, PQerrorMessage(l->pg));
    return;
  }
  if (got) {
    l->gen += got;
    listener_wake_all(l);
  }
}

static listener *check_listener(lua_State *L) {
  listener **ud = luaL_checkudata(L, 1, LISTENER_MT);
  if (!*ud) luaL_error(L, "pg: listener already closed");
  return *ud;
}

/*** Turn a pooled connection on which LISTEN ran into a listener. The connection
 * leaves the pool (the pool opens another when it needs one) and the handle is
 * released. Notifications are counted from now on.
 * @function listener
 * @param conn a connection from acquire(), idle (not in a transaction)
 * @return the listener
 */
static int l_listener(lua_State *L) {
  luaL_checkudata(L, 1, TH_PG_CONN_MT);
  listener **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  PGconn *pg = th__pg_conn_detach(L, 1); /* raises before anything is allocated */
  listener *l = th__pg_xcalloc(1, sizeof *l);
  l->poll = th__pg_xcalloc(1, sizeof *l->poll);
  l->pg = pg;
  th_list_init(&l->waits);
  *ud = l;
  th_list_push_front(&listeners, &l->link);
  int rc = uv_poll_init(th_loop(), l->poll, PQsocket(l->pg));
  if (rc < 0) {
    free(l->poll);
    l->poll = NULL;
    listener_fail(l, uv_strerror(rc));
    return 1;
  }
  l->poll->data = l;
  uv_poll_start(l->poll, UV_READABLE, on_listener_poll);
  uv_unref((uv_handle_t *)l->poll);
  /* Notifications may already sit in libpq's buffer (read with LISTEN's answer). */
  PGnotify *n;
  while ((n = PQnotifies(l->pg))) {
    PQfreemem(n);
    l->gen++;
  }
  return 1;
}

static void on_wait_timeout(th_wait *w) {
  lua_pushboolean(w->ctx->co, 0);
  th_wait_finish(w, 1);
}

/*** Wait for a notification newer than `after`.
 * @function listener:wait
 * @tparam number timeout seconds (0 to 86400)
 * @tparam[opt] integer after a generation seen before (default: the current one);
 *   when notifications arrived since, returns at once
 * @treturn[1] integer the generation (count of notifications received)
 * @treturn[2] boolean false on timeout
 * @treturn[3] nil
 * @treturn[3] string message when the connection is lost (open a new listener)
 */
static int l_listener_wait(lua_State *L) {
  listener *l = check_listener(L);
  lua_Number secs = luaL_checknumber(L, 2);
  luaL_argcheck(L, secs >= 0 && secs <= 86400, 2, "expected 0 to 86400 seconds");
  lua_Integer after = luaL_optinteger(L, 3, (lua_Integer)l->gen);
  if (l->broken) {
    lua_pushnil(L);
    lua_pushstring(L, l->err[0] ? l->err : "connection lost");
    return 2;
  }
  if ((lua_Integer)l->gen > after) {
    lua_pushinteger(L, (lua_Integer)l->gen);
    return 1;
  }
  th_wait *w = th_wait_new(L, "listener:wait", on_wait_timeout, l);
  th_list_push_front(&l->waits, &w->link);
  return th_wait_yield(L, w, secs);
}

/*** Notifications received so far.
 * @function listener:generation
 * @treturn integer
 */
static int l_listener_generation(lua_State *L) {
  listener *l = check_listener(L);
  lua_pushinteger(L, (lua_Integer)l->gen);
  return 1;
}

/*** Close the listener (idempotent; also __close and __gc). Waiters get nil, err.
 * @function listener:close
 */
static int l_listener_close(lua_State *L) {
  listener **ud = luaL_checkudata(L, 1, LISTENER_MT);
  listener *l = *ud;
  if (!l) return 0;
  if (!th_list_empty(&l->waits) && !l->broken) {
    snprintf(l->err, sizeof l->err, "listener closed");
    l->broken = 1;
  }
  listener_close_io(l);
  *ud = NULL; /* before waking: resumed code may close it again */
  listener_wake_all(l);
  free(l);
  return 0;
}

void th__pg_listeners_shutdown(void) {
  th_list *n;
  while ((n = th_list_first(&listeners))) {
    listener *l = th_list_entry(n, listener, link);
    if (!th_list_empty(&l->waits))
      th_log(NULL, "warn", "pg: shutdown with a listener still waited on");
    th_list *wn;
    while ((wn = th_list_first(&l->waits)))
      th_wait_close(th_list_entry(wn, th_wait, link));
    l->broken = 1;
    snprintf(l->err, sizeof l->err, "shutting down");
    listener_close_io(l); /* unlinks it; the handle frees it */
  }
}

int th__pg_listener_new(lua_State *L) { return l_listener(L); }

void th__pg_listen_register(lua_State *L) {
  if (luaL_newmetatable(L, LISTENER_MT)) {
    static const luaL_Reg methods[] = {{"wait", l_listener_wait},
                                       {"generation", l_listener_generation},
                                       {"close", l_listener_close},
                                       {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_listener_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_listener_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

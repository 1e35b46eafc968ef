/* pg_listen.c: LISTEN/NOTIFY listeners of the pg primitive ("pg.core").
 *
 * listener(conn) takes a pooled connection on which LISTEN ran out of the pool
 * (th__pg_conn_detach). Owns: every th__listener (malloc'd, freed by the Lua
 * handle's __gc/close), its PGconn (PQfinish in listener_close_io) and uv_poll_t
 * (freed in the poll's close callback), and each wait, a th__lwait (malloc'd,
 * freed in its timer's close callback). th__pg_listeners_shutdown closes every
 * listener's socket; the handles free the structs later.
 */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "pg_internal.h"

#define LISTENER_MT "th.pg.listener"

static void poll_close_cb(uv_handle_t *h) { free(h); }

typedef struct th__listener th__listener;
typedef struct th__lwait th__lwait;

struct th__lwait {
  uv_timer_t timer;
  th_ctx *ctx;
  th__listener *l;
  th__lwait *next, *prev;
};

struct th__listener {
  PGconn *pg;
  uv_poll_t *poll; /* NULL once closed */
  int64_t gen;     /* notifications received so far */
  int broken;
  char err[256];
  th__lwait *waits;
  th__listener *next, *prev; /* every open listener, for shutdown */
};

static th__listener *listeners;

static void lwait_closed(uv_handle_t *h) { free(h->data); }

static void lwait_unlink(th__lwait *w) {
  if (w->prev)
    w->prev->next = w->next;
  else if (w->l->waits == w)
    w->l->waits = w->next;
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = NULL;
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, lwait_closed);
}

/* Resume every waiter: with the generation, or with nil, err when broken. The
 * list and what the waiters get are copied first: resumed code may wait again or
 * close the listener, which frees l (so l is not touched after the first resume). */
static void listener_wake_all(th__listener *l) {
  th__lwait *w = l->waits;
  l->waits = NULL;
  int broken = l->broken;
  lua_Integer gen = (lua_Integer)l->gen;
  char err[sizeof l->err];
  snprintf(err, sizeof err, "%s", l->err[0] ? l->err : "connection lost");
  while (w) {
    th__lwait *next = w->next;
    th_ctx *ctx = w->ctx;
    w->next = w->prev = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, lwait_closed);
    lua_checkstack(ctx->co, 2);
    if (broken) {
      lua_pushnil(ctx->co);
      lua_pushstring(ctx->co, err);
      th_resume(ctx, 2);
    } else {
      lua_pushinteger(ctx->co, gen);
      th_resume(ctx, 1);
    }
    w = next;
  }
}

static void listener_close_io(th__listener *l) {
  if (l->poll) {
    uv_close((uv_handle_t *)l->poll, poll_close_cb);
    l->poll = NULL;
  }
  if (l->pg) PQfinish(l->pg);
  l->pg = NULL;
  if (l->prev)
    l->prev->next = l->next;
  else if (listeners == l)
    listeners = l->next;
  if (l->next) l->next->prev = l->prev;
  l->next = l->prev = NULL;
}

static void listener_fail(th__listener *l, const char *why) {
  if (!l->broken) th__pg_copy_line(l->err, sizeof l->err, why && *why ? why : "connection lost");
  l->broken = 1;
  th_log(NULL, "warn", "pg: listener connection lost: %s", l->err);
  listener_close_io(l);
  listener_wake_all(l);
}

static void on_listener_poll(uv_poll_t *h, int status, int events) {
  th__listener *l = h->data;
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

static th__listener *check_listener(lua_State *L) {
  th__listener **ud = luaL_checkudata(L, 1, LISTENER_MT);
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
  th__listener **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  PGconn *pg = th__pg_conn_detach(L, 1); /* raises before anything is allocated */
  th__listener *l = th__pg_xcalloc(1, sizeof *l);
  l->poll = th__pg_xcalloc(1, sizeof *l->poll);
  l->pg = pg;
  *ud = l;
  l->next = listeners;
  if (listeners) listeners->prev = l;
  listeners = l;
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

static void on_lwait_timeout(uv_timer_t *t) {
  th__lwait *w = t->data;
  th_ctx *ctx = w->ctx;
  lwait_unlink(w);
  lua_pushboolean(ctx->co, 0);
  th_resume(ctx, 1);
}

static void lwait_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  lwait_unlink(data);
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
  th__listener *l = check_listener(L);
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
  th_ctx *ctx = th_ctx_check(L, "listener:wait");
  th__lwait *w = th__pg_xcalloc(1, sizeof *w);
  w->ctx = ctx;
  w->l = l;
  uv_timer_init(th_loop(), &w->timer);
  w->timer.data = w;
  uv_update_time(th_loop());
  uv_timer_start(&w->timer, on_lwait_timeout, (uint64_t)(secs * 1000 + 0.5), 0);
  w->next = l->waits;
  if (l->waits) l->waits->prev = w;
  l->waits = w;
  return th_yield(L, lwait_cancel, w);
}

/*** Notifications received so far.
 * @function listener:generation
 * @treturn integer
 */
static int l_listener_generation(lua_State *L) {
  th__listener *l = check_listener(L);
  lua_pushinteger(L, (lua_Integer)l->gen);
  return 1;
}

/*** Close the listener (idempotent; also __close and __gc). Waiters get nil, err.
 * @function listener:close
 */
static int l_listener_close(lua_State *L) {
  th__listener **ud = luaL_checkudata(L, 1, LISTENER_MT);
  th__listener *l = *ud;
  if (!l) return 0;
  if (l->waits && !l->broken) {
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
  while (listeners) {
    th__listener *l = listeners;
    th__lwait *w = l->waits;
    if (w) th_log(NULL, "warn", "pg: shutdown with a listener still waited on");
    l->waits = NULL;
    while (w) {
      th__lwait *next = w->next;
      uv_timer_stop(&w->timer);
      uv_close((uv_handle_t *)&w->timer, lwait_closed);
      w = next;
    }
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

/* prim_pg.c: the "pg.core" primitive, non-blocking libpq under libuv.
 *
 * Owns: the process-wide connection pool P (static; shared by every bundle state
 * of this worker), every th__conn (malloc'd, freed by conn_destroy, or by the
 * release of the Lua handle holding it when it broke while held), each conn's
 * uv_poll_t (malloc'd, freed in its close callback), every th__waiter (malloc'd
 * by acquire, freed when it is resumed or cancelled), and the pool's timers.
 * Lua sees a connection through a full userdata "th.pg.conn" holding a pointer;
 * releasing it (release, __close or __gc) gives the connection back.
 *
 * Results are kept as a PGresult on the connection when the query finishes and
 * turned into Lua tables by conn:rows() inside the coroutine, so a memory error
 * while building rows is an ordinary Lua error, not a panic in a libuv callback.
 * The facade core/lua/pg.lua is the documented API; this module is its engine.
 *
 * Listeners (LISTEN/NOTIFY): listener(conn) takes a pooled connection on which
 * LISTEN ran out of the pool; the th__listener (malloc'd) owns its PGconn and
 * uv_poll_t (freed in the poll's close callback) and is freed by the Lua handle's
 * __gc/close once its poll is closed; each wait is a th__lwait (malloc'd, freed
 * in its timer's close callback). th_pg_shutdown closes every listener's socket.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "host_internal.h"
#include "pg.h"
#include "primitives.h"

#define CONN_MT "th.pg.conn"
#define LISTENER_MT "th.pg.listener"
#define STMT_CACHE_MAX 128       /* prepared statements kept per connection */
#define HEALTH_EVERY_MS 2000     /* period of the readiness check */
#define READY_WINDOW_MS 5000     /* a success this recent means ready */
#define CONNECT_TIMEOUT_MS 10000 /* libpq ignores connect_timeout when polled */

enum { IO_NONE, IO_CONNECT, IO_SETUP, IO_PREPARE, IO_EXEC, IO_RESET, IO_PING };

typedef struct th__conn th__conn;
typedef struct th__waiter th__waiter;

typedef struct {
  uint64_t hash;
  char *sql;
  char name[16];
} th__stmt;

struct th__conn {
  PGconn *pg;
  uv_poll_t *poll;     /* NULL when closed; freed in its close callback */
  int watching;        /* events the poll was last started with (0: none) */
  int io;              /* what the socket is busy with (IO_*) */
  int held;            /* a Lua handle, a reset or the health check owns it */
  int handle;          /* a Lua userdata points at it: never free before release */
  int broken;          /* closed after a failure; dropped on release */
  int flushing;        /* PQflush left data to write */
  int in_idle;         /* linked in P.idle */
  uint64_t started_ms; /* connect start, for the connect deadline */
  th_ctx *ctx;         /* the coroutine waiting on the running query */
  PGresult *result;    /* the finished query's result, for conn:rows() */
  char *errmsg;        /* the finished query's error, or NULL */
  char sqlstate[6];
  /* The statement being run: name of its cached prepared statement (or "" for
   * unnamed), cache slot being prepared (-1 when none), parameter values. */
  char stmt_name[16];
  int prep_slot;
  int nparams;
  char **params;
  th__stmt stmts[STMT_CACHE_MAX];
  int nstmts, next_stmt_id;
  th__conn *next, *prev; /* P.all */
  th__conn *idle_next;   /* P.idle (LIFO: warm connections first) */
};

enum { W_QUEUED = 1, W_READY };

struct th__waiter {
  th_ctx *ctx;
  uint64_t deadline_ms;
  int where;      /* W_QUEUED in P.wait, W_READY in P.ready */
  th__conn *conn; /* set when a connection was handed over */
  char err[256];  /* set when it failed instead */
  char sqlstate[6];
  th__waiter *next, *prev;
};

typedef struct {
  th__waiter *head, *tail;
  int n;
} th__wlist;

static struct {
  int inited, closed;
  const char *url; /* NULL: no database configured */
  int size;
  long timeout_ms;
  th__conn *all;
  th__conn *idle;
  int n_total, n_connecting, n_idle, n_held;
  th__wlist wait, ready;
  uv_timer_t wait_timer;   /* fires at the deadline of the oldest waiter */
  uv_timer_t health_timer; /* readiness check; unref'd */
  uv_idle_t kick;          /* resumes handed-over waiters outside Lua */
  uint64_t last_ok_ms;
  int reported[3];
} P;

static void on_poll(uv_poll_t *h, int status, int events);
static void listeners_shutdown(void);
static void on_wait_timeout(uv_timer_t *t);
static void on_kick(uv_idle_t *h);
static void pool_dispatch(void);
static void conn_lost(th__conn *c, const char *why);

/* ---- small helpers ----------------------------------------------------- */

static void *xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  if (!p) abort();
  return p;
}

static char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) abort();
  return p;
}

static uint64_t now_ms(void) { return uv_now(th_loop()); }

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* libpq messages end with a newline and may span lines: keep the first line. */
static void copy_line(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  if (!src) src = "";
  while (src[n] && src[n] != '\n' && n + 1 < cap) {
    dst[n] = src[n];
    n++;
  }
  dst[n] = 0;
}

static void report_metrics(void) {
  int v[3] = {P.n_held, P.n_idle, P.wait.n};
  if (memcmp(v, P.reported, sizeof v) == 0) return;
  memcpy(P.reported, v, sizeof v);
  th_metrics_pool(v[0], v[1], v[2]);
}

/* ---- waiter lists ------------------------------------------------------ */

static void wl_push(th__wlist *l, th__waiter *w) {
  w->next = NULL;
  w->prev = l->tail;
  if (l->tail)
    l->tail->next = w;
  else
    l->head = w;
  l->tail = w;
  l->n++;
}

static void wl_remove(th__wlist *l, th__waiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    l->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    l->tail = w->prev;
  w->next = w->prev = NULL;
  l->n--;
}

static void arm_wait_timer(void) {
  if (P.closed) return;
  if (!P.wait.head) {
    uv_timer_stop(&P.wait_timer);
    return;
  }
  uint64_t now = now_ms(), d = P.wait.head->deadline_ms;
  uv_timer_start(&P.wait_timer, on_wait_timeout, d > now ? d - now : 0, 0);
}

/* Move a queued waiter to the ready list; the kick handle resumes it from the
 * loop, never from inside the Lua call (release) that made it ready. */
static void waiter_ready(th__waiter *w) {
  wl_remove(&P.wait, w);
  w->where = W_READY;
  wl_push(&P.ready, w);
  if (!P.closed) uv_idle_start(&P.kick, on_kick);
}

static void waiter_fail(th__waiter *w, const char *msg, const char *sqlstate) {
  copy_line(w->err, sizeof w->err, msg);
  snprintf(w->sqlstate, sizeof w->sqlstate, "%s", sqlstate ? sqlstate : "");
  waiter_ready(w);
}

static void on_wait_timeout(uv_timer_t *t) {
  (void)t;
  uint64_t now = now_ms();
  while (P.wait.head && P.wait.head->deadline_ms <= now)
    waiter_fail(P.wait.head, "pool timeout", "");
  arm_wait_timer();
  report_metrics();
}

static void push_handle(lua_State *L, th__conn *c) {
  th__conn **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = c;
  c->handle = 1;
  luaL_setmetatable(L, CONN_MT);
}

static void on_kick(uv_idle_t *h) {
  int n = P.ready.n; /* only those ready now: resumed code may queue more */
  while (n-- > 0 && P.ready.head) {
    th__waiter *w = P.ready.head;
    wl_remove(&P.ready, w);
    th_ctx *ctx = w->ctx;
    int nres;
    lua_checkstack(ctx->co, 3);
    if (w->conn) {
      push_handle(ctx->co, w->conn);
      nres = 1;
    } else {
      lua_pushnil(ctx->co);
      lua_pushstring(ctx->co, w->err);
      nres = 2;
      if (w->sqlstate[0]) lua_pushstring(ctx->co, w->sqlstate), nres = 3;
    }
    free(w);
    th_resume(ctx, nres);
  }
  if (!P.ready.head) uv_idle_stop(h);
  report_metrics();
}

/* ---- the socket watcher ------------------------------------------------ */

static void poll_close_cb(uv_handle_t *h) { free(h); }

static void conn_unwatch(th__conn *c) {
  if (!c->poll) return;
  uv_close((uv_handle_t *)c->poll, poll_close_cb);
  c->poll = NULL;
}

/* Watch the socket. fresh: replace the uv_poll (during connect libpq may close
 * the socket and open another, possibly with the same number, so the old
 * watcher must go before the new one is registered). The handle keeps the
 * loop alive only while something waits on it. */
static int conn_watch(th__conn *c, int events, int fresh) {
  if (fresh) conn_unwatch(c);
  if (!c->poll) {
    int fd = PQsocket(c->pg);
    if (fd < 0) return -EBADF;
    c->poll = xcalloc(1, sizeof *c->poll);
    int rc = uv_poll_init(th_loop(), c->poll, fd);
    if (rc < 0) {
      free(c->poll);
      c->poll = NULL;
      return rc;
    }
    c->poll->data = c;
    c->watching = 0;
  }
  /* uv_poll_start always unregisters the fd first (epoll_ctl DEL, then ADD on
   * the next loop turn): only restart it when the events change. */
  if (c->watching != events) {
    uv_poll_start(c->poll, events, on_poll);
    c->watching = events;
  }
  if (c->io == IO_NONE)
    uv_unref((uv_handle_t *)c->poll);
  else
    uv_ref((uv_handle_t *)c->poll);
  return 0;
}

/* ---- connection lifetime ----------------------------------------------- */

static void idle_remove(th__conn *c) {
  if (!c->in_idle) return;
  th__conn **pp = &P.idle;
  while (*pp != c)
    pp = &(*pp)->idle_next;
  *pp = c->idle_next;
  c->idle_next = NULL;
  c->in_idle = 0;
  P.n_idle--;
}

static void free_params(th__conn *c) {
  for (int i = 0; i < c->nparams; i++)
    free(c->params[i]);
  free(c->params);
  c->params = NULL;
  c->nparams = 0;
}

/* A PREPARE that did not succeed: forget the slot it was filling. */
static void prep_abort(th__conn *c) {
  if (c->prep_slot < 0) return;
  free(c->stmts[c->prep_slot].sql);
  c->stmts[c->prep_slot].sql = NULL;
  c->prep_slot = -1;
}

static void clear_outcome(th__conn *c) {
  if (c->result) PQclear(c->result);
  c->result = NULL;
  free(c->errmsg);
  c->errmsg = NULL;
  c->sqlstate[0] = 0;
}

/* Close the socket and libpq side; the struct stays (a handle may point at it). */
static void conn_close_io(th__conn *c) {
  conn_unwatch(c);
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  c->broken = 1;
}

static void conn_destroy(th__conn *c) {
  idle_remove(c);
  conn_close_io(c);
  if (c->io == IO_CONNECT || c->io == IO_SETUP) P.n_connecting--;
  if (c->held) P.n_held--;
  clear_outcome(c);
  free_params(c);
  prep_abort(c);
  for (int i = 0; i < c->nstmts; i++)
    free(c->stmts[i].sql);
  if (c->prev)
    c->prev->next = c->next;
  else if (P.all == c)
    P.all = c->next;
  if (c->next) c->next->prev = c->prev;
  P.n_total--;
  free(c);
}

static void conn_to_idle(th__conn *c) {
  c->io = IO_NONE;
  c->held = 0;
  c->idle_next = P.idle;
  P.idle = c;
  c->in_idle = 1;
  P.n_idle++;
  conn_watch(c, UV_READABLE, 0); /* notice a server-side close while idle */
}

static void conn_connect_failed(th__conn *c, const char *msg) {
  char buf[256];
  snprintf(buf, sizeof buf, "connection failed: %s", msg ? msg : "unknown error");
  copy_line(buf, sizeof buf, buf);
  th_log(NULL, "warn", "pg: %s", buf);
  conn_destroy(c);
  /* Tell one waiter that has no other attempt underway why it cannot go on. */
  if (P.wait.n > P.n_connecting) waiter_fail(P.wait.head, buf, "08001");
  pool_dispatch();
}

/* Server notices (and the FATAL a terminated backend sends) go to the log,
 * not to stderr as libpq does by default. */
static void on_notice(void *arg, const char *message) {
  (void)arg;
  char line[512];
  copy_line(line, sizeof line, message);
  th_log(NULL, "debug", "pg: %s", line);
}

static int conn_start(void) {
  const char *kw[] = {"dbname", "fallback_application_name", NULL};
  const char *val[] = {P.url, "todo-host", NULL};
  th__conn *c = xcalloc(1, sizeof *c);
  c->pg = PQconnectStartParams(kw, val, 1);
  if (!c->pg) abort();
  PQsetNoticeProcessor(c->pg, on_notice, NULL);
  c->prep_slot = -1;
  c->next = P.all;
  if (P.all) P.all->prev = c;
  P.all = c;
  P.n_total++;
  P.n_connecting++;
  c->io = IO_CONNECT;
  c->started_ms = now_ms();
  if (PQstatus(c->pg) == CONNECTION_BAD || conn_watch(c, UV_WRITABLE, 1) < 0) {
    char msg[256];
    copy_line(msg, sizeof msg, PQerrorMessage(c->pg));
    conn_destroy(c);
    th_log(NULL, "warn", "pg: connection failed: %s", msg);
    if (P.wait.head) {
      char buf[300];
      snprintf(buf, sizeof buf, "connection failed: %s", msg);
      waiter_fail(P.wait.head, buf, "08001");
    }
    return -ECONNREFUSED;
  }
  return 0;
}

static int send_or_lost(th__conn *c, int ok) {
  if (!ok) {
    conn_lost(c, PQerrorMessage(c->pg));
    return -EIO;
  }
  int f = PQflush(c->pg);
  if (f < 0) {
    conn_lost(c, PQerrorMessage(c->pg));
    return -EIO;
  }
  c->flushing = f == 1;
  if (conn_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0), 0) < 0) {
    conn_lost(c, "cannot watch the socket");
    return -EIO;
  }
  return 0;
}

static void connect_step(th__conn *c) {
  switch (PQconnectPoll(c->pg)) {
  case PGRES_POLLING_READING:
    if (conn_watch(c, UV_READABLE, 1) < 0) conn_connect_failed(c, "cannot watch the socket");
    return;
  case PGRES_POLLING_WRITING:
    if (conn_watch(c, UV_WRITABLE, 1) < 0) conn_connect_failed(c, "cannot watch the socket");
    return;
  case PGRES_POLLING_OK:
    PQsetnonblocking(c->pg, 1);
    /* Session settings the result typing relies on (timestamptz output). */
    c->io = IO_SETUP;
    if (conn_watch(c, UV_READABLE, 1) < 0) {
      conn_connect_failed(c, "cannot watch the socket");
      return;
    }
    send_or_lost(c, PQsendQuery(c->pg, "SET TimeZone='UTC'; SET DateStyle='ISO'"));
    return;
  default: conn_connect_failed(c, PQerrorMessage(c->pg)); return;
  }
}

/* The server went away or the protocol broke. */
static void conn_lost(th__conn *c, const char *why) {
  int io = c->io;
  char msg[256];
  copy_line(msg, sizeof msg, why);
  if (io == IO_CONNECT || io == IO_SETUP) {
    conn_connect_failed(c, msg);
    return;
  }
  th_log(NULL, "warn", "pg: connection lost: %s", msg);
  if (!c->held || io == IO_RESET || io == IO_PING) {
    conn_destroy(c);
    pool_dispatch();
    return;
  }
  /* Held by Lua: close now, drop on release. A waiting query fails once. */
  conn_close_io(c);
  c->io = IO_NONE;
  if (c->ctx) {
    th_ctx *ctx = c->ctx;
    c->ctx = NULL;
    clear_outcome(c);
    free_params(c);
    prep_abort(c);
    lua_checkstack(ctx->co, 3);
    lua_pushnil(ctx->co);
    lua_pushliteral(ctx->co, "connection lost");
    lua_pushliteral(ctx->co, "08006");
    th_resume(ctx, 3);
  }
}

/* ---- query state machine ----------------------------------------------- */

/* Returns -1 when the connection cannot go on (COPY started). */
static int keep_result(th__conn *c, PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  int is_err = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    /* COPY is not supported through this API: the connection cannot go on. */
    PQclear(r);
    free(c->errmsg);
    c->errmsg = xstrdup("COPY is not supported by pg.query");
    snprintf(c->sqlstate, sizeof c->sqlstate, "0A000");
    return -1;
  }
  if (is_err) {
    if (!c->errmsg) {
      const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      char line[512];
      copy_line(line, sizeof line, m ? m : PQresultErrorMessage(r));
      c->errmsg = xstrdup(line);
      snprintf(c->sqlstate, sizeof c->sqlstate, "%s", s ? s : "");
    }
    PQclear(r);
    return 0;
  }
  if (c->result) PQclear(c->result); /* several statements: keep the last */
  c->result = r;
  return 0;
}

static int cache_find(th__conn *c, const char *sql, uint64_t h) {
  for (int i = 0; i < c->nstmts; i++)
    if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0) return i;
  return -1;
}

static int send_exec(th__conn *c) {
  c->io = IO_EXEC;
  return send_or_lost(c, PQsendQueryPrepared(c->pg, c->stmt_name, c->nparams,
                                             (const char *const *)c->params, NULL, NULL, 0));
}

static void query_finished(th__conn *c) {
  th_ctx *ctx = c->ctx;
  c->ctx = NULL;
  c->io = IO_NONE;
  free_params(c);
  if (c->poll) uv_unref((uv_handle_t *)c->poll);
  if (c->errmsg) {
    /* The cache is stale when someone ran DEALLOCATE / DISCARD. */
    if (strcmp(c->sqlstate, "26000") == 0) {
      for (int i = 0; i < c->nstmts; i++)
        free(c->stmts[i].sql);
      c->nstmts = 0;
    } else if (strcmp(c->sqlstate, "0A000") == 0 && c->stmt_name[0]) {
      /* "cached plan must not change result type" after a schema change:
       * prepare afresh under a new name next time. */
      for (int i = 0; i < c->nstmts; i++)
        if (strcmp(c->stmts[i].name, c->stmt_name) == 0) {
          free(c->stmts[i].sql);
          c->stmts[i] = c->stmts[--c->nstmts];
          break;
        }
    }
  } else {
    P.last_ok_ms = now_ms();
  }
  if (!ctx) return;
  lua_checkstack(ctx->co, 3);
  if (c->errmsg) {
    lua_pushnil(ctx->co);
    lua_pushstring(ctx->co, c->errmsg);
    lua_pushstring(ctx->co, c->sqlstate);
    clear_outcome(c);
    th_resume(ctx, 3);
  } else {
    lua_pushboolean(ctx->co, 1);
    th_resume(ctx, 1);
  }
}

/* All results of the command have arrived. */
static void command_done(th__conn *c) {
  switch (c->io) {
  case IO_SETUP:
    if (c->errmsg) {
      char m[256];
      copy_line(m, sizeof m, c->errmsg);
      clear_outcome(c);
      conn_connect_failed(c, m);
      return;
    }
    clear_outcome(c);
    P.n_connecting--;
    P.last_ok_ms = now_ms();
    conn_to_idle(c);
    pool_dispatch();
    return;
  case IO_PREPARE:
    if (c->errmsg) {
      prep_abort(c);
      query_finished(c);
      return;
    }
    clear_outcome(c);
    if (c->prep_slot >= 0) {
      c->nstmts++;
      c->prep_slot = -1;
    }
    send_exec(c);
    return;
  case IO_EXEC: query_finished(c); return;
  case IO_RESET:
  case IO_PING: {
    int ok = !c->errmsg && !c->broken && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    clear_outcome(c);
    if (!ok) {
      conn_destroy(c);
    } else {
      P.last_ok_ms = now_ms();
      P.n_held--;
      conn_to_idle(c);
    }
    pool_dispatch();
    return;
  }
  default: return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  th__conn *c = h->data;
  if (c->io == IO_CONNECT) {
    connect_step(c);
    return;
  }
  if (status < 0) {
    conn_lost(c, uv_strerror(status));
    return;
  }
  if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  if (c->flushing) {
    int f = PQflush(c->pg);
    if (f < 0) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
    if (f == 0) {
      c->flushing = 0;
      conn_watch(c, UV_READABLE, 0);
    }
  }
  if (c->io == IO_NONE) {
    /* Idle or held between queries: drop notifications, notice a close. */
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
      PQfreemem(n);
    if (PQstatus(c->pg) == CONNECTION_BAD) conn_lost(c, "server closed the connection");
    return;
  }
  while (!PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
      }
      command_done(c);
      return;
    }
    if (keep_result(c, r) < 0) {
      conn_close_io(c);
      if (c->io == IO_EXEC || c->io == IO_PREPARE) {
        prep_abort(c);
        query_finished(c);
      } else {
        conn_lost(c, "unexpected COPY");
      }
      return;
    }
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) conn_lost(c, PQerrorMessage(c->pg));
}

/* ---- pool -------------------------------------------------------------- */

/* An idle connection whose socket shows no close or error. Reading here
 * catches a backend that was terminated since the loop last looked. */
static th__conn *take_idle(void) {
  while (P.idle) {
    th__conn *c = P.idle;
    idle_remove(c);
    if (PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK && !PQisBusy(c->pg)) {
      c->held = 1;
      P.n_held++;
      return c;
    }
    th_log(NULL, "info", "pg: dropping a closed idle connection");
    conn_destroy(c);
  }
  return NULL;
}

static void pool_dispatch(void) {
  if (P.closed) return;
  while (P.wait.head && P.idle) {
    th__conn *c = take_idle();
    if (!c) break;
    th__waiter *w = P.wait.head;
    w->conn = c;
    waiter_ready(w);
  }
  while (P.wait.n > P.n_connecting && P.n_total < P.size)
    if (conn_start() < 0 && !P.wait.head) break;
  arm_wait_timer();
  report_metrics();
}

/* Give a connection back: reset a pending transaction, drop a broken one. */
static void conn_release(th__conn *c) {
  if (!c->held) return;
  if (c->ctx) return; /* a query still waits on it; cannot happen from Lua */
  if (P.closed || c->broken || !c->pg || c->io != IO_NONE || PQstatus(c->pg) != CONNECTION_OK) {
    conn_destroy(c);
    pool_dispatch();
    return;
  }
  clear_outcome(c);
  if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
    c->io = IO_RESET; /* stays held until the ROLLBACK answers */
    send_or_lost(c, PQsendQuery(c->pg, "ROLLBACK"));
    return;
  }
  P.n_held--;
  conn_to_idle(c);
  pool_dispatch();
}

static void on_health(uv_timer_t *t) {
  (void)t;
  uint64_t now = now_ms();
  /* libpq does not time out a polled connect: do it here. */
  for (th__conn *c = P.all, *next; c; c = next) {
    next = c->next;
    if ((c->io == IO_CONNECT || c->io == IO_SETUP) && now - c->started_ms > CONNECT_TIMEOUT_MS)
      conn_connect_failed(c, "timeout");
  }
  if (P.wait.head) return;
  if (P.idle) {
    th__conn *c = take_idle();
    if (!c) return;
    c->io = IO_PING;
    send_or_lost(c, PQsendQuery(c->pg, "SELECT 1"));
  } else if (P.n_total == 0) {
    conn_start(); /* becomes idle when it connects: that counts as success */
  }
  report_metrics();
}

/* Settings only (no handles): safe before the worker's loop exists. */
static void pool_config(void) {
  static int done;
  if (done) return;
  done = 1;
  P.url = th_config_str("DATABASE_URL", NULL);
  if (P.url && !*P.url) P.url = NULL;
  P.size = (int)th_config_long("PG_POOL_SIZE", 8);
  if (P.size < 1) P.size = 1;
  P.timeout_ms = th_config_long("PG_POOL_TIMEOUT_MS", 5000);
  if (P.timeout_ms < 0) P.timeout_ms = 0;
  P.reported[0] = P.reported[1] = P.reported[2] = -1;
}

/* Handles on th_loop(). Done on first use (acquire, th_pg_ready), never at
 * require time: `run` loads bundles once on a throwaway loop before the
 * workers start their own. */
static void pool_init(void) {
  if (P.inited) return;
  P.inited = 1;
  pool_config();
  uv_timer_init(th_loop(), &P.wait_timer);
  uv_idle_init(th_loop(), &P.kick);
  uv_timer_init(th_loop(), &P.health_timer);
  if (P.url) {
    /* First tick at once: open a connection early (warm pool, /readyz). */
    uv_timer_start(&P.health_timer, on_health, 0, HEALTH_EVERY_MS);
    uv_unref((uv_handle_t *)&P.health_timer);
  }
}

/* ---- public C API (pg.h) ----------------------------------------------- */

int th_pg_ready(void) {
  pool_init();
  if (!P.url) return 1;
  if (P.closed || !P.last_ok_ms) return 0;
  return now_ms() - P.last_ok_ms <= READY_WINDOW_MS;
}

void th_pg_shutdown(void) {
  if (!P.inited || P.closed) return;
  P.closed = 1;
  for (th__conn *c = P.all, *next; c; c = next) {
    next = c->next;
    if (c->ctx) th_log(NULL, "warn", "pg: shutdown with a query still waiting");
    c->ctx = NULL;
    if (c->handle) {
      conn_close_io(c); /* the handle's release frees it */
      c->io = IO_NONE;
    } else {
      conn_destroy(c);
    }
  }
  uv_close((uv_handle_t *)&P.wait_timer, NULL);
  uv_close((uv_handle_t *)&P.health_timer, NULL);
  uv_close((uv_handle_t *)&P.kick, NULL);
  listeners_shutdown();
}

/* ---- parameters -------------------------------------------------------- */

static int is_null(lua_State *L, int i) {
  return lua_isnoneornil(L, i) ||
         (lua_type(L, i) == LUA_TLIGHTUSERDATA && lua_touserdata(L, i) == NULL);
}

/* Check that parameter i can be sent; raise (misuse) when it cannot. Done for
 * every parameter before anything is allocated. */
static void param_check(lua_State *L, int i, int param) {
  if (is_null(L, i)) return;
  switch (lua_type(L, i)) {
  case LUA_TBOOLEAN:
  case LUA_TNUMBER: return;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    if (memchr(s, 0, len)) luaL_error(L, "pg: parameter %d contains a NUL byte", param);
    return;
  }
  default:
    luaL_error(L, "pg: parameter %d: cannot send a %s (the pg facade encodes tables)", param,
               luaL_typename(L, i));
  }
}

/* Text of a checked parameter, malloc'd, or NULL for SQL NULL. */
static char *param_text(lua_State *L, int i) {
  char tmp[64];
  if (is_null(L, i)) return NULL;
  if (lua_type(L, i) == LUA_TBOOLEAN) return xstrdup(lua_toboolean(L, i) ? "true" : "false");
  if (lua_type(L, i) == LUA_TSTRING) return xstrdup(lua_tostring(L, i));
  if (lua_isinteger(L, i)) {
    snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, i));
  } else {
    double d = lua_tonumber(L, i);
    if (isnan(d))
      snprintf(tmp, sizeof tmp, "NaN");
    else if (isinf(d))
      snprintf(tmp, sizeof tmp, d > 0 ? "Infinity" : "-Infinity");
    else
      snprintf(tmp, sizeof tmp, "%.17g", d);
  }
  return xstrdup(tmp);
}

/* ---- results ----------------------------------------------------------- */

/* Column and element type OIDs (pg_type.dat; stable across versions). */
enum {
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_OID = 26,
  OID_JSON = 114,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_TSTZ = 1184,
  OID_NUMERIC = 1700,
  OID_JSONB = 3802,
};

static Oid array_elem(Oid t) {
  switch (t) {
  case 1000: return OID_BOOL;
  case 1005: return OID_INT2;
  case 1007: return OID_INT4;
  case 1016: return OID_INT8;
  case 1028: return OID_OID;
  case 1021: return OID_FLOAT4;
  case 1022: return OID_FLOAT8;
  case 1231: return OID_NUMERIC;
  case 1185: return OID_TSTZ;
  case 199: return OID_JSON;
  case 3807: return OID_JSONB;
  case 1009:                            /* text */
  case 1015:                            /* varchar */
  case 1014:                            /* bpchar */
  case 1003:                            /* name */
  case 2951:                            /* uuid */
  case 1182:                            /* date */
  case 1115: /* timestamp */ return 25; /* as text */
  default: return 0;
  }
}

/* timestamptz text (ISO, any zone) -> RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.f]Z".
 * The fraction is what PostgreSQL prints: trailing zeros already dropped.
 * infinity and BC dates pass through unchanged. */
static void push_tstz(lua_State *L, const char *s, size_t len) {
  const char *sp = memchr(s, ' ', len);
  if (!sp || memchr(s, 'B', len)) {
    lua_pushlstring(L, s, len);
    return;
  }
  const char *t = sp + 1, *end = s + len, *off = t;
  while (off < end && *off != '+' && *off != '-')
    off++;
  if (off == end) {
    lua_pushlstring(L, s, len);
    return;
  }
  int oh = 0, om = 0, os = 0;
  sscanf(off + 1, "%d:%d:%d", &oh, &om, &os);
  long offset = (*off == '-' ? -1 : 1) * (oh * 3600L + om * 60L + os);
  const char *frac = memchr(t, '.', (size_t)(off - t));
  size_t fraclen = frac ? (size_t)(off - frac) : 0;
  char out[96];
  if (offset == 0) {
    snprintf(out, sizeof out, "%.*sT%.*sZ", (int)(sp - s), s, (int)(off - t), t);
  } else {
    struct tm tm = {0};
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) {
      lua_pushlstring(L, s, len);
      return;
    }
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
    time_t u = timegm(&tm) - offset;
    gmtime_r(&u, &tm);
    snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d%.*sZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)fraclen,
             frac ? frac : "");
  }
  lua_pushstring(L, out);
}

/* json/jsonb columns: the host's one JSON decoder (json_decode.c), which keeps
 * [] apart from {} and maps null to the shared null. */
static void push_json(lua_State *L, const char *s, size_t len, char *scratch) {
  (void)scratch;
  if (th_json_decode(L, s, len) < 0) luaL_error(L, "pg: cannot decode json: %s", lua_tostring(L, -1));
}

static void push_scalar(lua_State *L, Oid t, const char *s, size_t len, char *scratch);

/* Array text "{a,"b c",NULL,{...}}" (maybe "[0:1]={...}"): Lua arrays, typed. */
static const char *push_array(lua_State *L, const char *p, const char *end, Oid elem, char *scratch,
                              int depth) {
  luaL_checkstack(L, 4, "array");
  if (depth > 6 || p >= end || *p != '{') luaL_error(L, "pg: cannot decode array");
  p++;
  lua_newtable(L);
  th_mark_array(L);
  if (p < end && *p == '}') return p + 1;
  for (lua_Integer k = 1;; k++) {
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p < end && *p == '{') {
      p = push_array(L, p, end, elem, scratch, depth + 1);
    } else if (p < end && *p == '"') {
      char *o = scratch;
      p++;
      while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) p++;
        *o++ = *p++;
      }
      if (p >= end) luaL_error(L, "pg: cannot decode array");
      p++;
      size_t n = (size_t)(o - scratch);
      /* element text may itself need the scratch (json): move it off first */
      lua_pushlstring(L, scratch, n);
      const char *copy = lua_tostring(L, -1);
      push_scalar(L, elem, copy, n, scratch);
      lua_remove(L, -2);
    } else {
      const char *q = p;
      while (q < end && *q != ',' && *q != '}')
        q++;
      const char *e = q;
      while (e > p && isspace((unsigned char)e[-1]))
        e--;
      if (e - p == 4 && strncasecmp(p, "NULL", 4) == 0)
        th_push_null(L);
      else
        push_scalar(L, elem, p, (size_t)(e - p), scratch);
      p = q;
    }
    lua_rawseti(L, -2, k);
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p < end && *p == ',') {
      p++;
      continue;
    }
    if (p < end && *p == '}') return p + 1;
    luaL_error(L, "pg: cannot decode array");
  }
}

static void push_scalar(lua_State *L, Oid t, const char *s, size_t len, char *scratch) {
  switch (t) {
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
  case OID_OID: lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10)); return;
  case OID_FLOAT4:
  case OID_FLOAT8: lua_pushnumber(L, strtod(s, NULL)); return;
  case OID_NUMERIC: /* integral values become integers when they fit */
    if (len < 64) {
      char tmp[64];
      memcpy(tmp, s, len);
      tmp[len] = 0;
      if (lua_stringtonumber(L, tmp)) return;
    }
    lua_pushnumber(L, strtod(s, NULL));
    return;
  case OID_BOOL: lua_pushboolean(L, s[0] == 't'); return;
  case OID_JSON:
  case OID_JSONB: push_json(L, s, len, scratch); return;
  case OID_TSTZ: push_tstz(L, s, len); return;
  default: {
    Oid elem = array_elem(t);
    if (elem && len > 0 && (s[0] == '{' || s[0] == '[')) {
      const char *p = s, *end = s + len;
      if (*p == '[') { /* explicit bounds: skip to the '=' */
        while (p < end && *p != '=')
          p++;
        if (p < end) p++;
      }
      push_array(L, p, end, elem, scratch, 1);
      return;
    }
    lua_pushlstring(L, s, len);
  }
  }
}

/* ---- Lua API ----------------------------------------------------------- */

static th__conn *check_conn(lua_State *L) {
  th__conn **ud = luaL_checkudata(L, 1, CONN_MT);
  if (!*ud) luaL_error(L, "pg: connection already released");
  return *ud;
}

static void query_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th__conn *c = data;
  /* The coroutine is going away mid-query: the answer would arrive on a
   * connection nobody reads. Close it; the handle's release drops it. */
  c->ctx = NULL;
  conn_close_io(c);
  c->io = IO_NONE;
  free_params(c);
  prep_abort(c);
  clear_outcome(c);
}

/*** Send a query and wait for its completion.
 * @function conn:query
 * @tparam string sql SQL text with $1, $2 ... placeholders
 * @param ... parameters: nil/null, boolean, number or string (the facade
 *   turns pg.array tables into array literals and other tables into JSON)
 * @treturn[1] boolean true; then conn:rows() returns the rows
 * @treturn[2] nil
 * @treturn[2] string error message
 * @treturn[2] string SQLSTATE
 */
static int l_query(lua_State *L) {
  th__conn *c = check_conn(L);
  const char *sql = luaL_checkstring(L, 2);
  th_ctx *ctx = th_ctx_check(L, "pg query");
  if (c->io != IO_NONE || c->ctx) return luaL_error(L, "pg: connection is busy with another query");
  int n = lua_gettop(L) - 2;
  if (n > 65535) return luaL_error(L, "pg: too many parameters");
  clear_outcome(c);
  if (c->broken || !c->pg) {
    lua_pushnil(L);
    lua_pushliteral(L, "connection lost");
    lua_pushliteral(L, "08006");
    return 3;
  }
  /* Check everything first: a raise must leave nothing allocated. */
  for (int i = 0; i < n; i++)
    param_check(L, i + 3, i + 1);
  char **params = n > 0 ? xcalloc((size_t)n, sizeof *params) : NULL;
  for (int i = 0; i < n; i++)
    params[i] = param_text(L, i + 3);
  c->params = params;
  c->nparams = n;
  uint64_t h = fnv1a(sql);
  int slot = cache_find(c, sql, h);
  int rc;
  if (slot >= 0) {
    snprintf(c->stmt_name, sizeof c->stmt_name, "%s", c->stmts[slot].name);
    rc = send_exec(c);
  } else if (c->nstmts < STMT_CACHE_MAX) {
    th__stmt *st = &c->stmts[c->nstmts];
    st->hash = h;
    st->sql = xstrdup(sql);
    snprintf(st->name, sizeof st->name, "th_%d", ++c->next_stmt_id);
    snprintf(c->stmt_name, sizeof c->stmt_name, "%s", st->name);
    c->prep_slot = c->nstmts; /* counted once PREPARE succeeds */
    c->io = IO_PREPARE;
    rc = send_or_lost(c, PQsendPrepare(c->pg, st->name, sql, 0, NULL));
  } else {
    c->stmt_name[0] = 0; /* cache full: the unnamed statement */
    c->io = IO_PREPARE;
    rc = send_or_lost(c, PQsendPrepare(c->pg, "", sql, 0, NULL));
  }
  if (rc < 0) {
    /* conn_lost closed it (no ctx was waiting yet, so nothing resumed) */
    prep_abort(c);
    free_params(c);
    lua_pushnil(L);
    lua_pushliteral(L, "connection lost");
    lua_pushliteral(L, "08006");
    return 3;
  }
  c->ctx = ctx; /* only now: nothing may resume us before we yield */
  return th_yield(L, query_cancel, c);
}

/*** The rows of the last successful query, then forgets them.
 * @function conn:rows
 * @treturn table array of rows (column name -> typed value), JSON-array marked
 * @treturn ?integer rows affected (INSERT/UPDATE/DELETE/SELECT count), or nil
 */
static int l_rows(lua_State *L) {
  th__conn *c = check_conn(L);
  PGresult *r = c->result;
  lua_newtable(L);
  th_mark_array(L);
  if (!r) {
    lua_pushnil(L);
    return 2;
  }
  int nrows = PQntuples(r), ncols = PQnfields(r);
  int rows_idx = lua_gettop(L);
  luaL_checkstack(L, ncols + 8, "pg rows");
  int names = lua_gettop(L) + 1;
  for (int k = 0; k < ncols; k++)
    lua_pushstring(L, PQfname(r, k));
  /* scratch for decoding: as long as the longest value */
  size_t longest = 0;
  for (int i = 0; i < nrows; i++)
    for (int k = 0; k < ncols; k++)
      if ((size_t)PQgetlength(r, i, k) > longest) longest = (size_t)PQgetlength(r, i, k);
  char *scratch = lua_newuserdatauv(L, longest + 1, 0); /* collected with the frame */
  for (int i = 0; i < nrows; i++) {
    lua_createtable(L, 0, ncols);
    for (int k = 0; k < ncols; k++) {
      lua_pushvalue(L, names + k);
      if (PQgetisnull(r, i, k))
        th_push_null(L);
      else
        push_scalar(L, PQftype(r, k), PQgetvalue(r, i, k), (size_t)PQgetlength(r, i, k), scratch);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, rows_idx, i + 1);
  }
  lua_settop(L, rows_idx);
  const char *aff = PQcmdTuples(r);
  if (aff && *aff)
    lua_pushinteger(L, (lua_Integer)strtoll(aff, NULL, 10));
  else
    lua_pushnil(L);
  clear_outcome(c);
  return 2;
}

/*** Transaction state of the connection.
 * @function conn:tx_status
 * @treturn string "idle", "active", "intrans", "inerror" or "unknown"
 */
static int l_tx_status(lua_State *L) {
  th__conn *c = check_conn(L);
  const char *s = "unknown";
  if (c->pg && !c->broken) switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE: s = "idle"; break;
    case PQTRANS_ACTIVE: s = "active"; break;
    case PQTRANS_INTRANS: s = "intrans"; break;
    case PQTRANS_INERROR: s = "inerror"; break;
    default: break;
    }
  lua_pushstring(L, s);
  return 1;
}

/*** Give the connection back to the pool (idempotent; also __close, __gc).
 * A connection left inside a transaction is rolled back first; a broken one
 * is dropped and the next acquire opens a new one.
 * @function release
 * @param conn the handle from acquire()
 */
static int l_release(lua_State *L) {
  th__conn **ud = luaL_checkudata(L, 1, CONN_MT);
  th__conn *c = *ud;
  *ud = NULL;
  if (!c) return 0;
  c->handle = 0;
  if (c->ctx) { /* collected while a query waits: cannot normally happen */
    c->ctx = NULL;
    conn_close_io(c);
    c->io = IO_NONE;
  }
  conn_release(c);
  return 0;
}

static void waiter_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th__waiter *w = data;
  if (w->where == W_QUEUED)
    wl_remove(&P.wait, w);
  else
    wl_remove(&P.ready, w);
  th__conn *c = w->conn;
  free(w);
  if (c)
    conn_release(c);
  else
    pool_dispatch();
}

/*** Take a connection from the pool, waiting (FIFO) while all are busy.
 * @function acquire
 * @return[1] a connection handle
 * @treturn[2] nil
 * @treturn[2] string "pool timeout", "DATABASE_URL is not set" or
 *   "connection failed: ..."
 * @treturn[2] ?string SQLSTATE ("08001" for connection failures)
 */
static int l_acquire(lua_State *L) {
  pool_init();
  if (!P.url) {
    lua_pushnil(L);
    lua_pushliteral(L, "DATABASE_URL is not set");
    lua_pushliteral(L, "08001");
    return 3;
  }
  if (P.closed) {
    lua_pushnil(L);
    lua_pushliteral(L, "shutting down");
    return 2;
  }
  th_ctx *ctx = th_ctx_check(L, "pg.acquire");
  if (!P.wait.head) {
    th__conn *c = take_idle();
    if (c) {
      push_handle(L, c);
      report_metrics();
      return 1;
    }
  }
  th__waiter *w = xcalloc(1, sizeof *w);
  w->ctx = ctx;
  w->deadline_ms = now_ms() + (uint64_t)P.timeout_ms;
  w->where = W_QUEUED;
  wl_push(&P.wait, w);
  pool_dispatch();
  return th_yield(L, waiter_cancel, w);
}

/*** Pool gauges.
 * @function stats
 * @treturn table {in_use=, idle=, waiting=, size=, connecting=}
 */
static int l_stats(lua_State *L) {
  pool_config();
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, P.n_held);
  lua_setfield(L, -2, "in_use");
  lua_pushinteger(L, P.n_idle);
  lua_setfield(L, -2, "idle");
  lua_pushinteger(L, P.wait.n);
  lua_setfield(L, -2, "waiting");
  lua_pushinteger(L, P.size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, P.n_connecting);
  lua_setfield(L, -2, "connecting");
  return 1;
}

/* ---- listeners (LISTEN/NOTIFY) ----------------------------------------- */

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
 * list is detached first: resumed code may wait again or close the listener. */
static void listener_wake_all(th__listener *l) {
  th__lwait *w = l->waits;
  l->waits = NULL;
  while (w) {
    th__lwait *next = w->next;
    th_ctx *ctx = w->ctx;
    w->next = w->prev = NULL;
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, lwait_closed);
    lua_checkstack(ctx->co, 2);
    if (l->broken) {
      lua_pushnil(ctx->co);
      lua_pushstring(ctx->co, l->err[0] ? l->err : "connection lost");
      th_resume(ctx, 2);
    } else {
      lua_pushinteger(ctx->co, (lua_Integer)l->gen);
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
  if (!l->broken) copy_line(l->err, sizeof l->err, why && *why ? why : "connection lost");
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
  th__conn **cud = luaL_checkudata(L, 1, CONN_MT);
  th__conn *c = *cud;
  if (!c) return luaL_error(L, "pg: connection already released");
  if (c->ctx || c->io != IO_NONE || c->broken || !c->pg || PQstatus(c->pg) != CONNECTION_OK ||
      PQtransactionStatus(c->pg) != PQTRANS_IDLE)
    return luaL_error(L,
                      "pg.listener: the connection must be open and idle (outside a transaction)");
  th__listener **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = NULL;
  luaL_setmetatable(L, LISTENER_MT);
  th__listener *l = xcalloc(1, sizeof *l);
  l->poll = xcalloc(1, sizeof *l->poll);
  /* Take the socket over: the conn's watcher goes first (same fd). */
  conn_unwatch(c);
  l->pg = c->pg;
  c->pg = NULL;
  clear_outcome(c);
  *cud = NULL;
  c->handle = 0;
  conn_destroy(c);
  pool_dispatch();
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
  th__lwait *w = xcalloc(1, sizeof *w);
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
  listener_wake_all(l);
  *ud = NULL;
  free(l);
  return 0;
}

static void listeners_shutdown(void) {
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

static int l_conn_tostring(lua_State *L) {
  th__conn **ud = luaL_checkudata(L, 1, CONN_MT);
  lua_pushfstring(L, "pg.conn (%s)", *ud ? "held" : "released");
  return 1;
}

int luaopen_th_pg_core(lua_State *L) {
  if (luaL_newmetatable(L, CONN_MT)) {
    static const luaL_Reg methods[] = {{"query", l_query},
                                       {"rows", l_rows},
                                       {"tx_status", l_tx_status},
                                       {"release", l_release},
                                       {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_conn_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
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
  static const luaL_Reg funcs[] = {{"acquire", l_acquire},
                                   {"release", l_release},
                                   {"stats", l_stats},
                                   {"listener", l_listener},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  th_push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}

/* prim_pg.c: the "pg.core" primitive, non-blocking libpq under libuv, pipelined.
 *
 * Every connection runs in libpq pipeline mode once connected. A query is a
 * th__req appended to a connection's FIFO: [BEGIN] [Parse] Bind/Execute Sync,
 * each query with its own Sync so that an error in one never aborts another.
 * Queries are queued during a loop turn and sent at the turn's end (a
 * uv_prepare_t, before the loop blocks): several queries on one connection go
 * out corked (TCP_CORK) as one segment. Results come back in order and are
 * matched FIFO (a query ends with its PGRES_PIPELINE_SYNC).
 *
 * Two ways to use a connection:
 *  - shared: standalone queries (core.query, what pg.query uses) from any
 *    coroutine go to a shared connection with fewer than PG_PIPELINE_DEPTH
 *    queries in flight (an empty one first, then an idle one, then the least
 *    loaded, avoiding one whose oldest query waits longer than STALL_MS); when
 *    all are full they wait in P.qwait (FIFO) for the first free slot.
 *    PG_PIPELINE_DEPTH defaults to 1 (one query per connection at a time, as
 *    before pipelining): deeper pipelines raise throughput ~50% on the bench but
 *    a descheduled backend then delays every query queued on it (p99 in
 *    hundreds of ms on a loaded 2-core machine). PG_PIPELINE_CORK=0 disables
 *    TCP_CORK batching.
 *    A shared connection never carries a transaction.
 *  - held: acquire() hands a connection to one coroutine (pg.tx, LISTEN); only
 *    its holder queries it (conn:query, one at a time). conn:begin() defers
 *    BEGIN so it is sent with the transaction's first statement;
 *    conn:commit_next() sends COMMIT with its last (one round trip each less).
 * A waiting acquire() makes shared connections drain (no new queries) and takes
 * the first one whose FIFO is empty. Standalone queries that find no connection
 * wait in P.qwait with the same timeout as acquire().
 *
 * Owns: the process-wide pool P (static; shared by every bundle state of this
 * worker); every th__conn (malloc'd, freed by conn_destroy, or by the release of
 * the Lua handle holding it when it broke while held); each conn's uv_poll_t
 * (malloc'd, freed in its close callback); every th__waiter (malloc'd by
 * acquire, freed when resumed or cancelled); every th__req (malloc'd, freed by
 * the last of: its Lua result handle "th.pg.result" (__gc), its completion when
 * nobody holds it any more, the resume of conn:query); the results a req holds
 * (PGresult, error text) until r:rows() takes them or the req is freed; the
 * pool's timers, kick (uv_idle_t) and flush (uv_prepare_t) handles.
 * Rows are built by r:rows() / conn:rows() inside the coroutine (pg_decode.c),
 * so a memory error while building rows is an ordinary Lua error. Listeners:
 * pg_listen.c. The facade core/lua/pg.lua is the documented API.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "host.h"
#include "host_internal.h"
#include "pg.h"
#include "pg_internal.h"
#include "primitives.h"

#define CONN_MT TH_PG_CONN_MT
#define RESULT_MT "th.pg.result"
#define STMT_CACHE_MAX 128       /* prepared statements kept per connection */
#define HEALTH_EVERY_MS 2000     /* period of the readiness check */
#define READY_WINDOW_MS 5000     /* a success this recent means ready */
#define CONNECT_TIMEOUT_MS 10000 /* libpq ignores connect_timeout when polled */
#define STALL_MS 2               /* a shared conn whose oldest query waited longer is avoided */
#define IDLE_CHECK_MS 1          /* an empty shared conn idle this long is checked first */
#define BACKOFF_MIN_MS 50        /* the wait after a failed connection attempt ... */
#define BACKOFF_MAX_MS 2000      /* ... doubling per failure up to this */

enum { IO_CONNECT = 1, IO_SETUP, IO_READY };
/* req kinds: a standalone query (result handle), conn:query, internal ops */
enum { RQ_QUERY = 1, RQ_CONN, RQ_RESET, RQ_PING };
enum { RW_NEW = 0, RW_QWAIT, RW_PIPE, RW_DONE };
enum { OP_NONE = 0, OP_RESET, OP_PING };

typedef struct th__conn th__conn;
typedef struct th__waiter th__waiter;
typedef struct th__req th__req;

typedef struct {
  uint64_t hash;
  char *sql;
  char name[16];
} th__stmt;

typedef struct {
  th__req *req; /* NULL once the req is freed */
} th__res;

struct th__req {
  int kind;
  int where;            /* RW_* */
  int in_done;          /* linked in P.done, to be resumed by the kick */
  th_ctx *ctx;          /* the coroutine waiting for it, NULL when none */
  th__res *ud;          /* RQ_QUERY: its Lua handle, NULL once collected */
  th__conn *conn;       /* RW_PIPE: the connection it is queued on */
  th__conn *owner;      /* RQ_CONN: the held connection (kept alive by its handle) */
  uint64_t deadline_ms; /* RW_QWAIT */
  uint64_t sent_ms;     /* when it went out (a head waiting long: a stalled backend) */
  /* What to send; freed once sent. */
  const char *plain;              /* internal: SQL sent as is (static text) */
  char *sql;                      /* text to Parse (cache miss) or, in P.qwait, the query */
  char stmt_name[16];             /* the prepared statement to run */
  int parse, begin, commit, sent; /* commit: COMMIT follows in the same round trip */
  int nparams;
  char **params;
  /* The outcome. */
  int nres; /* results seen (BEGIN, Parse, Execute) */
  int parse_failed, forced;
  PGresult *result;
  char *errmsg;
  char sqlstate[6];
  char constraint[64]; /* PG_DIAG_CONSTRAINT_NAME of the error, if any */
  th__req *next, *prev;
};

typedef struct {
  th__req *head, *tail;
  int n;
} th__rlist;

struct th__conn {
  PGconn *pg;
  uv_poll_t *poll;         /* NULL when closed; freed in its close callback */
  int watching;            /* events the poll was last started with (0: none) */
  int io;                  /* IO_CONNECT, IO_SETUP, IO_READY */
  int held;                /* a Lua handle or an internal op (op) owns it */
  int handle;              /* a Lua userdata points at it: never free before release */
  int op, op_done, op_ok;  /* internal ROLLBACK / SELECT 1 on a held conn */
  int broken;              /* closed after a failure; dropped on release */
  int flushing;            /* PQflush left data to write */
  int in_idle;             /* linked in P.idle */
  int shared;              /* serves standalone queries */
  int draining;            /* shared, but takes no new queries (an acquire waits) */
  int dirty;               /* linked in P.dirty: has unsent queries */
  int cork;                /* 0 unknown, 1 TCP_CORK works, -1 not a TCP socket */
  int begin_pending;       /* conn:begin() ran; BEGIN goes out with the next query */
  int commit_pending;      /* conn:commit_next() ran; COMMIT goes out after the next query */
  uint64_t started_ms;     /* connect start, for the connect deadline */
  uint64_t empty_since_ms; /* when the FIFO last became empty */
  th__rlist q;             /* queries sent or to send, in order */
  th__req *unsent;         /* first req of q not sent yet */
  /* conn:query's outcome, for conn:rows() */
  PGresult *result;
  char *errmsg;
  char sqlstate[6];
  th__stmt stmts[STMT_CACHE_MAX];
  int nstmts, next_stmt_id;
  th__conn *next, *prev; /* P.all */
  th__conn *idle_next;   /* P.idle (LIFO: warm connections first) */
  th__conn *dirty_next;  /* P.dirty */
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
  int depth; /* queries in flight on a shared conn before another conn is used */
  int cork;  /* send several queued queries as one TCP segment */
  th__conn *all;
  th__conn *idle;
  th__conn *dirty;
  int n_total, n_connecting, n_idle, n_held, n_shared, n_shared_busy, n_draining;
  th__wlist wait, ready;     /* acquire() */
  th__rlist qwait, done;     /* standalone queries without a conn; finished, to resume */
  uv_timer_t wait_timer;     /* fires at the deadline of the oldest waiter */
  uv_timer_t health_timer;   /* readiness check; unref'd */
  uv_idle_t kick;            /* resumes waiters and finished queries outside Lua */
  uv_prepare_t flush;        /* sends the queries queued during the loop turn */
  uv_timer_t retry_timer;    /* dispatches again when a connect backoff ends */
  uint64_t connect_after_ms; /* no new connection before (after failed attempts) */
  long connect_backoff_ms;   /* 0 after a success; doubles per failure, to BACKOFF_MAX_MS */
  uint64_t last_ok_ms;
  int reported[3];
} P;

static void on_poll(uv_poll_t *h, int status, int events);
static void on_wait_timeout(uv_timer_t *t);
static void on_kick(uv_idle_t *h);
static void on_flush(uv_prepare_t *h);
static void pool_dispatch(void);
static void conn_lost(th__conn *c, const char *why);
static int conn_start(void);
static void read_results(th__conn *c);

/* ---- small helpers ----------------------------------------------------- */

#define xcalloc th__pg_xcalloc
#define copy_line th__pg_copy_line

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

static void report_metrics(void) {
  int v[3] = {P.n_held + P.n_shared_busy, P.n_idle + P.n_shared - P.n_shared_busy,
              P.wait.n + P.qwait.n};
  if (memcmp(v, P.reported, sizeof v) == 0) return;
  memcpy(P.reported, v, sizeof v);
  th_metrics_pool(v[0], v[1], v[2]);
}

/* ---- lists ------------------------------------------------------------- */

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

static void rl_push(th__rlist *l, th__req *r) {
  r->next = NULL;
  r->prev = l->tail;
  if (l->tail)
    l->tail->next = r;
  else
    l->head = r;
  l->tail = r;
  l->n++;
}

static void rl_remove(th__rlist *l, th__req *r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    l->head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    l->tail = r->prev;
  r->next = r->prev = NULL;
  l->n--;
}

static void arm_wait_timer(void) {
  if (P.closed) return;
  uint64_t d = UINT64_MAX;
  if (P.wait.head) d = P.wait.head->deadline_ms;
  if (P.qwait.head && P.qwait.head->deadline_ms < d) d = P.qwait.head->deadline_ms;
  if (d == UINT64_MAX) {
    uv_timer_stop(&P.wait_timer);
    return;
  }
  uint64_t now = now_ms();
  uv_timer_start(&P.wait_timer, on_wait_timeout, d > now ? d - now : 0, 0);
}

static void kick(void) {
  if (!P.closed) uv_idle_start(&P.kick, on_kick);
}

/* ---- waiters (acquire) ------------------------------------------------- */

/* Move a queued waiter to the ready list; the kick handle resumes it from the
 * loop, never from inside the Lua call (release) that made it ready. */
static void waiter_ready(th__waiter *w) {
  wl_remove(&P.wait, w);
  w->where = W_READY;
  wl_push(&P.ready, w);
  kick();
}

static void waiter_fail(th__waiter *w, const char *msg, const char *sqlstate) {
  copy_line(w->err, sizeof w->err, msg);
  snprintf(w->sqlstate, sizeof w->sqlstate, "%s", sqlstate ? sqlstate : "");
  waiter_ready(w);
}

static void push_handle(lua_State *L, th__conn *c) {
  th__conn **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = c;
  c->handle = 1;
  luaL_setmetatable(L, CONN_MT);
}

/* ---- requests ---------------------------------------------------------- */

static void req_free_params(th__req *r) {
  for (int i = 0; i < r->nparams; i++)
    free(r->params[i]);
  free(r->params);
  r->params = NULL;
  r->nparams = 0;
}

static void req_clear_outcome(th__req *r) {
  if (r->result) PQclear(r->result);
  r->result = NULL;
  free(r->errmsg);
  r->errmsg = NULL;
  r->sqlstate[0] = 0;
  r->constraint[0] = 0;
}

static void req_free(th__req *r) {
  req_free_params(r);
  req_clear_outcome(r);
  free(r->sql);
  free(r);
}

static void req_set_error(th__req *r, const char *msg, const char *sqlstate) {
  req_clear_outcome(r);
  r->errmsg = xstrdup(msg);
  snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate ? sqlstate : "");
}

/* A standalone query or conn:query is over (answered or failed): hand it to its
 * coroutine through the kick, or free it when nobody will read it. */
static void req_finish(th__req *r) {
  r->where = RW_DONE;
  r->conn = NULL;
  req_free_params(r);
  if (P.closed) r->ctx = NULL; /* shutdown: the coroutines were cancelled */
  int orphan = r->kind == RQ_CONN ? !r->ctx : !r->ud;
  if (orphan) {
    req_free(r);
    return;
  }
  if (r->ctx && !P.closed) {
    r->in_done = 1;
    rl_push(&P.done, r);
    kick();
  }
}

static void req_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th__req *r = data;
  r->ctx = NULL;
  if (r->in_done) {
    rl_remove(&P.done, r);
    r->in_done = 0;
  } else if (r->where == RW_QWAIT) {
    rl_remove(&P.qwait, r);
    r->where = RW_DONE;
    arm_wait_timer();
    report_metrics();
  } else if (r->where == RW_PIPE) {
    return; /* the answer will come: dropped then (the FIFO must stay in step) */
  }
  if (r->kind == RQ_CONN || !r->ud) req_free(r);
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
  if (c->io == IO_READY && c->q.n == 0)
    uv_unref((uv_handle_t *)c->poll);
  else
    uv_ref((uv_handle_t *)c->poll);
  return 0;
}

static int conn_rewatch(th__conn *c) {
  return conn_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0), 0);
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

static void dirty_remove(th__conn *c) {
  if (!c->dirty) return;
  th__conn **pp = &P.dirty;
  while (*pp != c)
    pp = &(*pp)->dirty_next;
  *pp = c->dirty_next;
  c->dirty_next = NULL;
  c->dirty = 0;
}

static void clear_outcome(th__conn *c) {
  if (c->result) PQclear(c->result);
  c->result = NULL;
  free(c->errmsg);
  c->errmsg = NULL;
  c->sqlstate[0] = 0;
}

static void conn_share(th__conn *c) {
  c->shared = 1;
  P.n_shared++;
  if (c->q.n) P.n_shared_busy++;
}

static void conn_unshare(th__conn *c) {
  if (!c->shared) return;
  if (c->draining) P.n_draining--;
  if (c->q.n) P.n_shared_busy--;
  c->shared = c->draining = 0;
  P.n_shared--;
}

static void conn_hold(th__conn *c) {
  c->held = 1;
  P.n_held++;
}

static void q_push(th__conn *c, th__req *r) {
  r->where = RW_PIPE;
  r->conn = c;
  rl_push(&c->q, r);
  if (c->q.n == 1 && c->shared) P.n_shared_busy++;
  if (!c->unsent) c->unsent = r;
  if (!c->dirty) {
    c->dirty = 1;
    c->dirty_next = P.dirty;
    P.dirty = c;
  }
  if (!P.closed) uv_prepare_start(&P.flush, on_flush);
}

static void q_remove(th__conn *c, th__req *r) {
  if (c->unsent == r) c->unsent = r->next;
  rl_remove(&c->q, r);
  r->conn = NULL;
  if (c->q.n == 0) {
    if (c->shared) P.n_shared_busy--;
    c->empty_since_ms = now_ms();
    c->unsent = NULL;
    dirty_remove(c);
  }
}

/* Take every req off the connection: internal ones are freed, the others fail
 * with msg (once each). */
static void conn_fail_all(th__conn *c, const char *msg, const char *sqlstate) {
  th__req *r;
  while ((r = c->q.head)) {
    q_remove(c, r);
    if (r->kind == RQ_RESET || r->kind == RQ_PING) {
      req_free(r);
      continue;
    }
    req_set_error(r, msg, sqlstate);
    req_finish(r);
  }
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
  conn_fail_all(c, "connection lost", "08006");
  dirty_remove(c);
  conn_close_io(c);
  if (c->io == IO_CONNECT || c->io == IO_SETUP) P.n_connecting--;
  if (c->held) P.n_held--;
  conn_unshare(c);
  clear_outcome(c);
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
  c->held = 0;
  c->idle_next = P.idle;
  P.idle = c;
  c->in_idle = 1;
  P.n_idle++;
  conn_watch(c, UV_READABLE, 0); /* notice a server-side close while idle */
}

/* Standalone queries waiting for a connection fail (a connection attempt failed
 * and no other is underway). */
static void qwait_fail_all(const char *msg, const char *sqlstate) {
  th__req *r;
  while ((r = P.qwait.head)) {
    rl_remove(&P.qwait, r);
    req_set_error(r, msg, sqlstate);
    req_finish(r);
  }
}

/* A connection attempt failed: the next one waits, 50 ms doubling to BACKOFF_MAX_MS, so
 * that a database that is down is not hammered (and the loop does not spin on it). */
static void connect_backoff(void) {
  long b = P.connect_backoff_ms ? P.connect_backoff_ms * 2 : BACKOFF_MIN_MS;
  P.connect_backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
  P.connect_after_ms = now_ms() + (uint64_t)P.connect_backoff_ms;
}

static void on_retry(uv_timer_t *t) {
  (void)t;
  pool_dispatch();
}

static void conn_connect_failed(th__conn *c, const char *msg) {
  char buf[256];
  snprintf(buf, sizeof buf, "connection failed: %s", msg ? msg : "unknown error");
  copy_line(buf, sizeof buf, buf);
  th_log(NULL, "warn", "pg: %s", buf);
  conn_destroy(c);
  connect_backoff();
  /* Tell one waiter that has no other attempt underway why it cannot go on. */
  if (P.wait.n > P.n_connecting)
    waiter_fail(P.wait.head, buf, "08001");
  else if (P.qwait.head && P.n_connecting == 0 && P.n_shared == 0)
    qwait_fail_all(buf, "08001");
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
  uint64_t now = now_ms();
  if (now < P.connect_after_ms) {
    if (!uv_is_active((uv_handle_t *)&P.retry_timer))
      uv_timer_start(&P.retry_timer, on_retry, P.connect_after_ms - now, 0);
    return -EAGAIN;
  }
  const char *kw[] = {"dbname", "fallback_application_name", NULL};
  const char *val[] = {P.url, "todo-host", NULL};
  th__conn *c = xcalloc(1, sizeof *c);
  c->pg = PQconnectStartParams(kw, val, 1);
  if (!c->pg) abort();
  PQsetNoticeProcessor(c->pg, on_notice, NULL);
  c->next = P.all;
  if (P.all) P.all->prev = c;
  P.all = c;
  P.n_total++;
  P.n_connecting++;
  c->io = IO_CONNECT;
  c->started_ms = now_ms();
  if (PQstatus(c->pg) == CONNECTION_BAD || conn_watch(c, UV_WRITABLE, 1) < 0) {
    char msg[256], buf[300];
    copy_line(msg, sizeof msg, PQerrorMessage(c->pg));
    conn_destroy(c);
    connect_backoff();
    th_log(NULL, "warn", "pg: connection failed: %s", msg);
    snprintf(buf, sizeof buf, "connection failed: %s", msg);
    if (P.wait.head)
      waiter_fail(P.wait.head, buf, "08001");
    else if (P.qwait.head && P.n_connecting == 0 && P.n_shared == 0)
      qwait_fail_all(buf, "08001");
    return -ECONNREFUSED;
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
    /* Session settings the result typing relies on (timestamptz output), and the
     * plan cache mode (PG_PLAN_CACHE_MODE, one of config.c's fixed choices). "auto",
     * PostgreSQL's default, replans a cached statement on every execution while it
     * estimates a custom plan cheaper: a list page of 1-7 tasks then spends 5x its
     * execution planning; force_generic_plan saves that, but loses the custom plans
     * that know a user's own task count (a search sorted by due date, 20,000 tasks:
     * 1.7 ms custom, 5.7 ms generic). Measurements: docs/benchmarks.md. */
    c->io = IO_SETUP;
    if (conn_watch(c, UV_READABLE, 1) < 0) {
      conn_connect_failed(c, "cannot watch the socket");
      return;
    }
    char setup[160];
    snprintf(setup, sizeof setup, "SET TimeZone='UTC'; SET DateStyle='ISO'; SET plan_cache_mode=%s",
             th_cfg.pg_plan_cache_mode ? th_cfg.pg_plan_cache_mode : "auto");
    if (!PQsendQuery(c->pg, setup) || PQflush(c->pg) < 0)
      conn_connect_failed(c, PQerrorMessage(c->pg));
    return;
  default: conn_connect_failed(c, PQerrorMessage(c->pg)); return;
  }
}

/* The session settings answered: enter pipeline mode, join the pool. */
static void setup_results(th__conn *c) {
  while (!PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (r) {
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        char m[256];
        copy_line(m, sizeof m, PQresultErrorMessage(r));
        PQclear(r);
        conn_connect_failed(c, m);
        return;
      }
      PQclear(r);
      continue;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD || !PQenterPipelineMode(c->pg)) {
      conn_connect_failed(c, PQerrorMessage(c->pg));
      return;
    }
    c->io = IO_READY;
    P.n_connecting--;
    P.last_ok_ms = now_ms();
    P.connect_backoff_ms = 0;
    P.connect_after_ms = 0;
    conn_to_idle(c);
    pool_dispatch();
    return;
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) conn_connect_failed(c, PQerrorMessage(c->pg));
}

/* The server went away or the protocol broke: every query queued on the
 * connection fails once with "connection lost"; the connection is dropped (or,
 * held by a Lua handle, closed now and dropped on release). */
static void conn_lost(th__conn *c, const char *why) {
  char msg[256];
  copy_line(msg, sizeof msg, why);
  if (c->io == IO_CONNECT || c->io == IO_SETUP) {
    conn_connect_failed(c, msg);
    return;
  }
  th_log(NULL, "warn", "pg: connection lost: %s", msg);
  conn_fail_all(c, "connection lost", "08006");
  dirty_remove(c);
  if (!c->handle) {
    conn_destroy(c);
    pool_dispatch();
    return;
  }
  c->op = OP_NONE;
  conn_close_io(c);
}

/* ---- statements and sending -------------------------------------------- */

static int cache_find(th__conn *c, const char *sql, uint64_t h) {
  for (int i = 0; i < c->nstmts; i++)
    if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0) return i;
  return -1;
}

static void cache_forget(th__conn *c, const char *name) {
  for (int i = 0; i < c->nstmts; i++)
    if (strcmp(c->stmts[i].name, name) == 0) {
      free(c->stmts[i].sql);
      c->stmts[i] = c->stmts[--c->nstmts];
      return;
    }
}

static void cache_clear(th__conn *c) {
  for (int i = 0; i < c->nstmts; i++)
    free(c->stmts[i].sql);
  c->nstmts = 0;
}

/* Queue r on c: resolve its statement in c's cache (a miss is prepared in the
 * same round, named and cached at once so the queries behind it reuse it). sql
 * may be r->sql (a query that waited for a connection). */
static void conn_attach(th__conn *c, th__req *r, const char *sql) {
  uint64_t h = fnv1a(sql);
  int slot = cache_find(c, sql, h);
  if (slot >= 0) {
    memcpy(r->stmt_name, c->stmts[slot].name, sizeof r->stmt_name);
    free(r->sql);
    r->sql = NULL;
  } else {
    if (sql != r->sql) r->sql = xstrdup(sql);
    r->parse = 1;
    if (c->nstmts < STMT_CACHE_MAX) {
      th__stmt *st = &c->stmts[c->nstmts++];
      st->hash = h;
      st->sql = xstrdup(sql);
      snprintf(st->name, sizeof st->name, "th_%d", ++c->next_stmt_id);
      memcpy(r->stmt_name, st->name, sizeof r->stmt_name);
    } else {
      r->stmt_name[0] = 0; /* cache full: the unnamed statement */
    }
  }
  if (c->begin_pending) {
    r->begin = 1;
    c->begin_pending = 0;
  }
  if (c->commit_pending) {
    r->commit = 1;
    c->commit_pending = 0;
  }
  q_push(c, r);
}

static void conn_attach_plain(th__conn *c, int kind, const char *sql) {
  th__req *r = xcalloc(1, sizeof *r);
  r->kind = kind;
  r->plain = sql;
  q_push(c, r);
}

static int send_req(th__conn *c, th__req *r) {
  PGconn *pg = c->pg;
  if (r->begin && !PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) return 0;
  if (r->plain) {
    if (!PQsendQueryParams(pg, r->plain, 0, NULL, NULL, NULL, NULL, 0)) return 0;
  } else {
    if (r->parse && !PQsendPrepare(pg, r->stmt_name, r->sql, 0, NULL)) return 0;
    if (!PQsendQueryPrepared(pg, r->stmt_name, r->nparams, (const char *const *)r->params, NULL,
                             NULL, 0))
      return 0;
  }
  /* Before the Sync: if the statement fails, the pipeline skips the COMMIT and the
   * transaction stays aborted (the facade then rolls back). */
  if (r->commit && !PQsendQueryParams(pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) return 0;
  return PQpipelineSync(pg);
}

static void set_cork(th__conn *c, int on) {
  int v = on;
  if (setsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_CORK, &v, sizeof v) < 0)
    c->cork = -1;
  else
    c->cork = 1;
}

/* Send every unsent query of c: several go out as one segment. */
static void conn_flush(th__conn *c) {
  if (!c->pg || !c->unsent) return;
  int corked = P.cork && c->cork >= 0 && c->unsent->next;
  if (corked) set_cork(c, 1);
  for (th__req *r = c->unsent; r; r = r->next) {
    if (!send_req(c, r)) {
      conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
    r->sent = 1;
    r->sent_ms = now_ms();
    req_free_params(r);
    free(r->sql);
    r->sql = NULL;
  }
  c->unsent = NULL;
  if (corked && c->cork > 0) set_cork(c, 0);
  int f = PQflush(c->pg);
  if (f < 0) {
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  c->flushing = f == 1;
  /* A send that could not finish makes libpq read what the server sent
   * meanwhile: those answers sit in its buffer and the socket will not tell. */
  read_results(c);
}

static void on_flush(uv_prepare_t *h) {
  uv_prepare_stop(h);
  th__conn *c;
  while ((c = P.dirty)) {
    P.dirty = c->dirty_next;
    c->dirty_next = NULL;
    c->dirty = 0;
    conn_flush(c);
  }
}

/* ---- results ----------------------------------------------------------- */

/* One result of r's round: keep the first error, the last rows. */
static void req_keep(th__req *r, PGresult *res) {
  int idx = r->nres++;
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_PIPELINE_ABORTED) {
    PQclear(res);
    return;
  }
  if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
    if (!r->errmsg) {
      const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
      const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      char line[512];
      copy_line(line, sizeof line, m ? m : PQresultErrorMessage(res));
      req_set_error(r, line, s);
      const char *k = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
      snprintf(r->constraint, sizeof r->constraint, "%s", k ? k : "");
      r->parse_failed = r->parse && idx == (r->begin ? 1 : 0);
    }
    PQclear(res);
    return;
  }
  if (r->errmsg) {
    PQclear(res);
    return;
  }
  /* The COMMIT sent after the statement answers last: keep the statement's rows. */
  if (r->commit && idx > (r->begin ? 1 : 0) + (r->parse ? 1 : 0)) {
    PQclear(res);
    return;
  }
  if (r->result) PQclear(r->result);
  r->result = res;
}

/* r's Sync arrived: its answer is complete. */
static void req_complete(th__conn *c, th__req *r) {
  q_remove(c, r);
  if (r->forced && r->result) {
    PQclear(r->result);
    r->result = NULL;
  }
  if (r->errmsg) {
    if (r->parse_failed && r->stmt_name[0]) {
      /* The statement does not exist: the queries behind that counted on it
       * fail with this error, not with "prepared statement does not exist". */
      cache_forget(c, r->stmt_name);
      for (th__req *o = c->q.head; o; o = o->next)
        if (!o->parse && !o->plain && !o->forced && strcmp(o->stmt_name, r->stmt_name) == 0) {
          req_set_error(o, r->errmsg, r->sqlstate);
          o->forced = 1;
        }
    } else if (!r->forced && strcmp(r->sqlstate, "26000") == 0) {
      cache_clear(c); /* someone ran DEALLOCATE / DISCARD */
    } else if (!r->forced && strcmp(r->sqlstate, "0A000") == 0 && r->stmt_name[0]) {
      /* "cached plan must not change result type" after a schema change:
       * prepare afresh under a new name next time. */
      cache_forget(c, r->stmt_name);
    }
  } else {
    P.last_ok_ms = now_ms();
  }
  if (r->kind == RQ_RESET || r->kind == RQ_PING) {
    if (c->op) {
      c->op_done = 1;
      c->op_ok = !r->errmsg;
    }
    req_free(r);
    return;
  }
  req_finish(r);
}

/* After the results were read: a finished internal op or a drained shared
 * connection goes back to the pool. May free c. */
static void conn_settle(th__conn *c) {
  if (c->op && c->op_done && c->q.n == 0) {
    int ok = c->op_ok && !c->broken && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    c->op = OP_NONE;
    c->op_done = 0;
    if (!ok) {
      conn_destroy(c);
    } else {
      P.n_held--;
      conn_to_idle(c);
    }
    pool_dispatch();
    return;
  }
  if (c->shared && c->draining && c->q.n == 0) {
    conn_unshare(c);
    conn_to_idle(c);
    pool_dispatch();
    return;
  }
  /* Waiting queries take it even while an acquire() waits too: the acquire()
   * has its draining connections. Left free, this connection went unused until
   * that transaction ended or a newer query came (pg_spec: "gives a freed
   * connection to a waiting query while a transaction waits too"). */
  if (c->shared && !c->draining && P.qwait.head) {
    th__req *q;
    while ((q = P.qwait.head) && c->q.n < P.depth) {
      rl_remove(&P.qwait, q);
      conn_attach(c, q, q->sql);
    }
    arm_wait_timer();
  }
  if (conn_rewatch(c) < 0) conn_lost(c, "cannot watch the socket");
}

static void read_results(th__conn *c) {
  int nulls = 0;
  while (c->q.head && c->q.head->sent && !PQisBusy(c->pg)) {
    PGresult *res = PQgetResult(c->pg);
    if (!res) {
      if (++nulls >= 2) break; /* nothing more is pending in libpq */
      continue;
    }
    nulls = 0;
    th__req *r = c->q.head;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      req_complete(c, r);
      continue;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      /* COPY is not supported through this API: the connection cannot go on. */
      PQclear(res);
      q_remove(c, r);
      if (r->kind == RQ_RESET || r->kind == RQ_PING) {
        req_free(r);
      } else {
        req_set_error(r, "COPY is not supported by pg.query", "0A000");
        req_finish(r);
      }
      conn_lost(c, "unexpected COPY");
      return;
    }
    req_keep(r, res);
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  conn_settle(c);
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
    c->flushing = f == 1;
  }
  if (c->io == IO_SETUP) {
    setup_results(c);
    return;
  }
  if (c->q.n == 0) {
    /* Idle, or held between queries: drop notifications, notice a close. */
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
      PQfreemem(n);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
      conn_lost(c, "server closed the connection");
      return;
    }
    conn_rewatch(c);
    return;
  }
  read_results(c);
}

/* ---- pool -------------------------------------------------------------- */

/* Whether an open connection's socket shows no close or error. Reading here
 * catches a backend that was terminated since the loop last looked. */
static int conn_alive(th__conn *c) {
  return PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK && !PQisBusy(c->pg);
}

/* An idle connection that is still open, taken out of P.idle (not yet held or
 * shared: the caller decides). */
static th__conn *take_idle(void) {
  while (P.idle) {
    th__conn *c = P.idle;
    idle_remove(c);
    if (conn_alive(c)) return c;
    th_log(NULL, "info", "pg: dropping a closed idle connection");
    conn_destroy(c);
  }
  return NULL;
}

/* A shared connection with nothing in flight, unshared, for acquire(). */
static th__conn *take_shared_empty(void) {
  for (th__conn *c = P.all, *next; c; c = next) {
    next = c->next;
    if (!c->shared || c->q.n || !c->pg) continue;
    conn_unshare(c);
    if (conn_alive(c)) return c;
    conn_destroy(c);
  }
  return NULL;
}

/* Queries in flight, and a penalty when the oldest has waited more than
 * STALL_MS: its backend is stalled (descheduled, a slow query), and whatever is
 * queued behind it waits as long. */
static int conn_load(th__conn *c) {
  th__req *h = c->q.head;
  int load = c->q.n;
  if (h && h->sent && now_ms() - h->sent_ms > STALL_MS) load += 1 << 16;
  return load;
}

/* The connection a standalone query goes to, or NULL (then it waits). */
static th__conn *pick_shared(void) {
  for (;;) {
    th__conn *best = NULL;
    int best_load = 0;
    for (th__conn *c = P.all; c; c = c->next) {
      if (!c->shared || c->draining || !c->pg || c->q.n >= P.depth) continue;
      int load = conn_load(c);
      if (!best || load < best_load) best = c, best_load = load;
    }
    if (best && best->q.n == 0 && now_ms() - best->empty_since_ms >= IDLE_CHECK_MS &&
        !conn_alive(best)) {
      conn_lost(best, "server closed the connection");
      continue;
    }
    if (best && best->q.n == 0) return best;
    /* Spread to an idle connection before queueing behind another query. */
    if (!P.wait.head) {
      th__conn *c = take_idle();
      if (c) {
        conn_share(c);
        return c;
      }
      if (P.n_total < P.size && P.n_connecting == 0) conn_start();
    }
    return best; /* NULL when every shared connection is full: wait in P.qwait */
  }
}

static void pool_dispatch(void) {
  if (P.closed) return;
  for (;;) {
    th__waiter *w = P.wait.head;
    th__req *q = P.qwait.head;
    if (!w && !q) break;
    int tx_first = w && (!q || w->deadline_ms <= q->deadline_ms);
    th__conn *c = take_idle();
    if (!c && tx_first) c = take_shared_empty();
    if (!c) break;
    if (tx_first) {
      conn_hold(c);
      w->conn = c;
      waiter_ready(w);
    } else {
      conn_share(c);
      while ((q = P.qwait.head) && c->q.n < P.depth) {
        rl_remove(&P.qwait, q);
        conn_attach(c, q, q->sql);
      }
    }
  }
  /* Open connections for the waiters (standalone queries share one). */
  for (;;) {
    int tx_need = P.wait.n - P.n_draining;
    int need = (tx_need > 0 ? tx_need : 0) + (P.qwait.n ? 1 : 0);
    if (need <= P.n_connecting || P.n_total >= P.size) break;
    int rc = conn_start();
    if (rc == -EAGAIN || (rc < 0 && !P.wait.head && !P.qwait.head)) break;
  }
  /* Still short for acquire(): shared connections stop taking queries and go
   * to the waiters once their queries answered. */
  int shortfall = P.wait.n - P.n_connecting - P.n_draining;
  for (th__conn *c = P.all; c && shortfall > 0; c = c->next)
    if (c->shared && !c->draining && c->q.n > 0) {
      c->draining = 1;
      P.n_draining++;
      shortfall--;
    }
  arm_wait_timer();
  report_metrics();
}

/* Give a connection back: reset a pending transaction, drop a broken one. */
static void conn_release(th__conn *c) {
  if (!c->held || c->op) return;
  c->begin_pending = 0;
  c->commit_pending = 0;
  if (P.closed || c->broken || !c->pg || c->q.n || PQstatus(c->pg) != CONNECTION_OK) {
    conn_destroy(c); /* a query still in flight was abandoned: its answer is lost */
    pool_dispatch();
    return;
  }
  clear_outcome(c);
  if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
    c->op = OP_RESET; /* stays held until the ROLLBACK answers */
    conn_attach_plain(c, RQ_RESET, "ROLLBACK");
    conn_rewatch(c);
    return;
  }
  P.n_held--;
  c->held = 0;
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
  if (P.wait.head || P.qwait.head) return;
  if (P.idle) {
    th__conn *c = take_idle();
    if (!c) return;
    conn_hold(c);
    c->op = OP_PING;
    conn_attach_plain(c, RQ_PING, "SELECT 1");
    conn_rewatch(c);
  } else if (P.n_total == 0) {
    conn_start(); /* becomes idle when it connects: that counts as success */
  } else if (now - P.last_ok_ms >= HEALTH_EVERY_MS) {
    for (th__conn *c = P.all; c; c = c->next)
      if (c->shared && !c->draining && c->q.n == 0 && c->pg) {
        conn_attach_plain(c, RQ_PING, "SELECT 1"); /* in the pipeline, no hold */
        conn_rewatch(c);
        break;
      }
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
  P.depth = (int)th_config_long("PG_PIPELINE_DEPTH", 1);
  if (P.depth < 1) P.depth = 1;
  P.cork = th_config_long("PG_PIPELINE_CORK", 1) != 0;
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
  uv_prepare_init(th_loop(), &P.flush);
  uv_timer_init(th_loop(), &P.health_timer);
  uv_timer_init(th_loop(), &P.retry_timer);
  if (P.url) {
    /* First tick at once: open a connection early (warm pool, /readyz). */
    uv_timer_start(&P.health_timer, on_health, 0, HEALTH_EVERY_MS);
    uv_unref((uv_handle_t *)&P.health_timer);
  }
}

static void on_wait_timeout(uv_timer_t *t) {
  (void)t;
  uint64_t now = now_ms();
  while (P.wait.head && P.wait.head->deadline_ms <= now)
    waiter_fail(P.wait.head, "pool timeout", "");
  th__req *r;
  while ((r = P.qwait.head) && r->deadline_ms <= now) {
    rl_remove(&P.qwait, r);
    req_set_error(r, "pool timeout", "");
    req_finish(r);
  }
  arm_wait_timer();
  report_metrics();
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
  n = P.done.n;
  while (n-- > 0 && P.done.head) {
    th__req *r = P.done.head;
    rl_remove(&P.done, r);
    r->in_done = 0;
    th_ctx *ctx = r->ctx;
    r->ctx = NULL;
    if (r->kind == RQ_QUERY) {
      th_resume(ctx, 0); /* r:rows() reads the outcome */
      continue;
    }
    /* conn:query: the outcome moves to the connection, for conn:rows() */
    th__conn *c = r->owner;
    int nres = 1;
    clear_outcome(c);
    lua_checkstack(ctx->co, 4);
    if (r->errmsg) {
      lua_pushnil(ctx->co);
      lua_pushstring(ctx->co, r->errmsg);
      lua_pushstring(ctx->co, r->sqlstate);
      nres = 3;
      if (r->constraint[0]) lua_pushstring(ctx->co, r->constraint), nres = 4;
    } else {
      c->result = r->result;
      r->result = NULL;
      lua_pushboolean(ctx->co, 1);
    }
    req_free(r);
    th_resume(ctx, nres);
  }
  if (!P.ready.head && !P.done.head) uv_idle_stop(h);
  report_metrics();
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
  th__req *r;
  while ((r = P.done.head)) { /* their coroutines were cancelled: nobody resumes */
    rl_remove(&P.done, r);
    r->in_done = 0;
    r->ctx = NULL;
    if (r->kind == RQ_CONN || !r->ud) req_free(r);
  }
  qwait_fail_all("shutting down", "");
  for (th__conn *c = P.all, *next; c; c = next) {
    next = c->next;
    if (c->q.n) th_log(NULL, "warn", "pg: shutdown with a query still waiting");
    if (c->handle) {
      conn_fail_all(c, "shutting down", "");
      dirty_remove(c);
      conn_close_io(c); /* the handle's release frees it */
    } else {
      conn_destroy(c);
    }
  }
  uv_close((uv_handle_t *)&P.wait_timer, NULL);
  uv_close((uv_handle_t *)&P.health_timer, NULL);
  uv_close((uv_handle_t *)&P.retry_timer, NULL);
  uv_close((uv_handle_t *)&P.kick, NULL);
  uv_close((uv_handle_t *)&P.flush, NULL);
  th__pg_listeners_shutdown();
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

/* Check the parameters from stack index first on; returns their count. */
static int params_check(lua_State *L, int first) {
  int n = lua_gettop(L) - first + 1;
  if (n > 65535) luaL_error(L, "pg: too many parameters");
  for (int i = 0; i < n; i++)
    param_check(L, first + i, i + 1);
  return n;
}

static void params_take(lua_State *L, int first, int n, th__req *r) {
  r->params = n > 0 ? xcalloc((size_t)n, sizeof *r->params) : NULL;
  for (int i = 0; i < n; i++)
    r->params[i] = param_text(L, first + i);
  r->nparams = n;
}

/* COPY would take the connection over (and every query queued behind it):
 * refuse it before sending. Skips blanks and comments. */
static int is_copy(const char *s) {
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '(')
      s++;
    if (s[0] == '-' && s[1] == '-') {
      while (*s && *s != '\n')
        s++;
    } else if (s[0] == '/' && s[1] == '*') {
      const char *e = strstr(s + 2, "*/");
      if (!e) return 0;
      s = e + 2;
    } else {
      break;
    }
  }
  if (strncasecmp(s, "copy", 4) != 0) return 0;
  char n = s[4];
  return !(n == '_' || (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9'));
}

static int push_copy_refused(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "COPY is not supported by pg.query");
  lua_pushliteral(L, "0A000");
  return 3;
}

/* ---- Lua API: held connections ----------------------------------------- */

static th__conn *check_conn(lua_State *L) {
  th__conn **ud = luaL_checkudata(L, 1, CONN_MT);
  if (!*ud) luaL_error(L, "pg: connection already released");
  return *ud;
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
  if (c->q.n) return luaL_error(L, "pg: connection is busy with another query");
  int n = params_check(L, 3); /* a raise must leave nothing allocated */
  clear_outcome(c);
  if (c->broken || !c->pg) {
    lua_pushnil(L);
    lua_pushliteral(L, "connection lost");
    lua_pushliteral(L, "08006");
    return 3;
  }
  if (is_copy(sql)) return push_copy_refused(L);
  th__req *r = xcalloc(1, sizeof *r);
  r->kind = RQ_CONN;
  r->owner = c;
  params_take(L, 3, n, r);
  conn_attach(c, r, sql);
  conn_rewatch(c);
  r->ctx = ctx;
  return th_yield(L, req_cancel, r);
}

/*** The rows of the last successful query, then forgets them.
 * @function conn:rows
 * @treturn table array of rows (column name -> typed value), JSON-array marked
 * @treturn ?integer rows affected (INSERT/UPDATE/DELETE/SELECT count), or nil
 */
static int l_rows(lua_State *L) {
  th__conn *c = check_conn(L);
  th__pg_push_rows(L, c->result);
  clear_outcome(c);
  return 2;
}

/*** Defer BEGIN: it is sent together with the next query (one round trip less).
 * With `false`, cancel a BEGIN not sent yet.
 * @function conn:begin
 * @tparam[opt=true] boolean on
 * @treturn boolean whether a BEGIN was pending before the call
 */
static int l_begin(lua_State *L) {
  th__conn *c = check_conn(L);
  int on = lua_isnone(L, 2) || lua_toboolean(L, 2);
  if (on && (c->q.n || (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE)))
    return luaL_error(L, "pg: conn:begin needs an idle connection");
  lua_pushboolean(L, c->begin_pending);
  c->begin_pending = on;
  return 1;
}

/*** Send COMMIT right after the next query, in the same round trip (the query is
 * the transaction's last). A failure of either is that query's failure; when the
 * query fails the COMMIT is skipped and the transaction stays aborted.
 * @function conn:commit_next
 */
static int l_commit_next(lua_State *L) {
  th__conn *c = check_conn(L);
  if (c->q.n) return luaL_error(L, "pg: conn:commit_next needs an idle connection");
  c->commit_pending = 1;
  return 0;
}

/*** Transaction state of the connection.
 * @function conn:tx_status
 * @treturn string "idle", "active", "intrans", "inerror" or "unknown"
 */
static int l_tx_status(lua_State *L) {
  th__conn *c = check_conn(L);
  const char *s = "unknown";
  if (c->pg && !c->broken) switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE: s = c->begin_pending ? "intrans" : "idle"; break;
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
  conn_release(c);
  return 0;
}

PGconn *th__pg_conn_detach(lua_State *L, int idx) {
  th__conn **cud = luaL_checkudata(L, idx, CONN_MT);
  th__conn *c = *cud;
  if (!c) luaL_error(L, "pg: connection already released");
  if (c->q.n || c->broken || !c->pg || c->begin_pending || PQstatus(c->pg) != CONNECTION_OK ||
      PQtransactionStatus(c->pg) != PQTRANS_IDLE || !PQexitPipelineMode(c->pg))
    luaL_error(L, "pg.listener: the connection must be open and idle (outside a transaction)");
  /* Take the socket over: the conn's watcher goes first (same fd). */
  conn_unwatch(c);
  PGconn *pg = c->pg;
  c->pg = NULL;
  clear_outcome(c);
  *cud = NULL;
  c->handle = 0;
  conn_destroy(c);
  pool_dispatch();
  return pg;
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

static int push_no_pool(lua_State *L) {
  lua_pushnil(L);
  if (!P.url) {
    lua_pushliteral(L, "DATABASE_URL is not set");
    lua_pushliteral(L, "08001");
    return 3;
  }
  lua_pushliteral(L, "shutting down");
  return 2;
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
  if (!P.url || P.closed) return push_no_pool(L);
  th_ctx *ctx = th_ctx_check(L, "pg.acquire");
  if (!P.wait.head) {
    th__conn *c = take_idle();
    if (!c) c = take_shared_empty();
    if (c) {
      conn_hold(c);
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

/* ---- Lua API: standalone (pipelined) queries ---------------------------- */

/*** Queue a standalone query on a shared, pipelined connection.
 * Returns at once with a result handle: `r:wait()` then `r:rows()`.
 * @function query
 * @tparam string sql SQL text with $1, $2 ... placeholders
 * @param ... parameters (as conn:query)
 * @return[1] the result handle
 * @treturn[2] nil
 * @treturn[2] string "DATABASE_URL is not set", "shutting down", COPY refused
 * @treturn[2] ?string SQLSTATE
 */
static int l_pool_query(lua_State *L) {
  const char *sql = luaL_checkstring(L, 1);
  pool_init();
  if (!P.url || P.closed) return push_no_pool(L);
  th_ctx_check(L, "pg query");
  int n = params_check(L, 2);
  if (is_copy(sql)) return push_copy_refused(L);
  th__res *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->req = NULL;
  luaL_setmetatable(L, RESULT_MT);
  th__req *r = xcalloc(1, sizeof *r);
  r->kind = RQ_QUERY;
  r->ud = ud;
  ud->req = r;
  params_take(L, 2, n, r);
  th__conn *c = pick_shared();
  if (c) {
    conn_attach(c, r, sql);
    conn_rewatch(c);
  } else {
    r->sql = xstrdup(sql);
    r->where = RW_QWAIT;
    r->deadline_ms = now_ms() + (uint64_t)P.timeout_ms;
    rl_push(&P.qwait, r);
    pool_dispatch();
  }
  report_metrics();
  return 1;
}

static th__req *check_res(lua_State *L) {
  th__res *ud = luaL_checkudata(L, 1, RESULT_MT);
  if (!ud->req) luaL_error(L, "pg: result already collected");
  return ud->req;
}

/*** Wait until the query answered (returns at once when it has).
 * @function result:wait
 */
static int l_res_wait(lua_State *L) {
  th__req *r = check_res(L);
  if (r->where == RW_DONE) return 0;
  th_ctx *ctx = th_ctx_check(L, "pg query");
  if (r->ctx) return luaL_error(L, "pg: a coroutine already waits on this result");
  r->ctx = ctx;
  return th_yield(L, req_cancel, r);
}

/*** The outcome of the query (once; then the rows are forgotten).
 * @function result:rows
 * @treturn[1] table rows
 * @treturn[1] ?integer rows affected
 * @treturn[2] nil
 * @treturn[2] string error message
 * @treturn[2] string SQLSTATE
 * @treturn[2] ?string the constraint violated (PG_DIAG_CONSTRAINT_NAME), if any
 */
static int l_res_rows(lua_State *L) {
  th__req *r = check_res(L);
  if (r->where != RW_DONE) return luaL_error(L, "pg: the query has not answered yet");
  if (r->errmsg) {
    lua_pushnil(L);
    lua_pushstring(L, r->errmsg);
    lua_pushstring(L, r->sqlstate);
    if (!r->constraint[0]) return 3;
    lua_pushstring(L, r->constraint);
    return 4;
  }
  th__pg_push_rows(L, r->result);
  if (r->result) PQclear(r->result);
  r->result = NULL;
  return 2;
}

static int l_res_gc(lua_State *L) {
  th__res *ud = luaL_checkudata(L, 1, RESULT_MT);
  th__req *r = ud->req;
  ud->req = NULL;
  if (!r) return 0;
  r->ud = NULL;
  if (r->where == RW_DONE && !r->in_done) {
    req_free(r);
  } else if (r->where == RW_QWAIT) {
    rl_remove(&P.qwait, r);
    req_free(r);
    arm_wait_timer();
  }
  /* queued on a connection: freed when its answer arrives */
  return 0;
}

/*** Pool gauges.
 * @function stats
 * @treturn table {in_use=, idle=, waiting=, size=, connecting=, shared=}
 *   (a shared connection is in use while queries are in flight on it)
 */
static int l_stats(lua_State *L) {
  pool_config();
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, P.n_held + P.n_shared_busy);
  lua_setfield(L, -2, "in_use");
  lua_pushinteger(L, P.n_idle + P.n_shared - P.n_shared_busy);
  lua_setfield(L, -2, "idle");
  lua_pushinteger(L, P.wait.n + P.qwait.n);
  lua_setfield(L, -2, "waiting");
  lua_pushinteger(L, P.size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, P.n_connecting);
  lua_setfield(L, -2, "connecting");
  lua_pushinteger(L, P.n_shared);
  lua_setfield(L, -2, "shared");
  return 1;
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
                                       {"begin", l_begin},
                                       {"tx_status", l_tx_status},
                                       {"release", l_release},
                                       {"commit_next", l_commit_next},
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
  if (luaL_newmetatable(L, RESULT_MT)) {
    static const luaL_Reg methods[] = {{"wait", l_res_wait}, {"rows", l_res_rows}, {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_res_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  th__pg_listen_register(L);
  static const luaL_Reg funcs[] = {{"acquire", l_acquire},
                                   {"release", l_release},
                                   {"query", l_pool_query},
                                   {"stats", l_stats},
                                   {"listener", th__pg_listener_new},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  th_push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}

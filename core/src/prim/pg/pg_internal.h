/* pg_internal.h: what the files of the pg primitive share (prim/pg/).
 *   conn.c    one libpq connection: connecting, session setup, the socket
 *             watcher, loss and destruction
 *   query.c   a query's round trip on a connection: requests, the statement
 *             cache, sending (pipelined, corked), reading the results
 *   pool.c    the process-wide pool: waiters, dispatch, release, health,
 *             readiness, shutdown
 *   lua.c     the "pg.core" Lua API (acquire, query, results, parameters)
 *   decode.c  PGresult -> Lua rows (typed values)
 *   listen.c  LISTEN/NOTIFY listeners built from a pooled connection
 * Nothing here is visible outside the primitive; pg.h is its public face.
 * The files call each other (a loop inside one folder); names shared between
 * them carry the th__pg_ prefix, the rest are static.
 */
#ifndef TH_PG_INTERNAL_H
#define TH_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "runtime/host.h"
#include "runtime/later.h"

#define TH_PG_CONN_MT "th.pg.conn"
#define CONN_MT TH_PG_CONN_MT
#define RESULT_MT "th.pg.result"
#define STMT_CACHE_MAX 128       /* prepared statements kept per connection */
#define HEALTH_EVERY_MS 2000     /* period of the readiness check */
#define READY_WINDOW_MS 5000     /* a success this recent means ready */
#define CONNECT_TIMEOUT_MS 10000 /* libpq ignores connect_timeout when polled */
#define STALL_MS 2               /* a shared conn whose oldest query waited longer is avoided */
#define IDLE_CHECK_MS 1          /* an empty shared conn idle this long is checked first */
#define BACKOFF_MIN_MS 50        /* the wait after a failed connection attempt ... */
/* ... doubling per failure up to this: small, so that a database that comes back is in
 * use again within a second (scripts/chaos measures it) */
#define BACKOFF_MAX_MS 400

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
  th_later later;       /* RW_DONE: queued to resume ctx (the runtime's resume-later queue) */
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
  th_list link;        /* in a connection's FIFO or P.qwait */
};

/* A FIFO of reqs (base/list.h) with its length. A zeroed one is empty. */
typedef struct {
  th_list list;
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
  th_list link;       /* in P.all */
  th_list idle_link;  /* in P.idle (LIFO: warm connections first) */
  th_list dirty_link; /* in P.dirty */
};

enum { W_QUEUED = 1, W_READY };

struct th__waiter {
  th_ctx *ctx;
  uint64_t deadline_ms;
  int where;      /* W_QUEUED in P.wait, W_READY in the resume-later queue */
  th__conn *conn; /* set when a connection was handed over */
  char err[256];  /* set when it failed instead */
  char sqlstate[6];
  th_list link;   /* in P.wait */
  th_later later; /* W_READY: queued to resume ctx */
};

/* A FIFO of waiters with its length. A zeroed one is empty. */
typedef struct {
  th_list list;
  int n;
} th__wlist;

/* Every connection: `for (c = th__pg_conn_first(); c; c = th__pg_conn_next(c))`. */
#define th__pg_conn_first()                                                                        \
  (th__pg_pool.all.next && !th_list_empty(&th__pg_pool.all)                                        \
       ? th_list_entry(th__pg_pool.all.next, th__conn, link)                                       \
       : NULL)
#define th__pg_conn_next(c)                                                                        \
  ((c)->link.next == &th__pg_pool.all ? NULL : th_list_entry((c)->link.next, th__conn, link))

/* The first req or waiter of a list, the one after r, or NULL. */
static inline th__req *th__pg_rl_head(const th__rlist *l) {
  return l->list.next && !th_list_empty(&l->list) ? th_list_entry(l->list.next, th__req, link)
                                                  : NULL;
}
static inline th__req *th__pg_rl_next(const th__rlist *l, const th__req *r) {
  const th_list *n = th_list_next(&l->list, &r->link);
  return n ? th_list_entry(n, th__req, link) : NULL;
}
static inline th__waiter *th__pg_wl_head(const th__wlist *l) {
  return l->list.next && !th_list_empty(&l->list) ? th_list_entry(l->list.next, th__waiter, link)
                                                  : NULL;
}

typedef struct th__pg_pool_t {
  int inited, closed;
  const char *url; /* NULL: no database configured */
  int size;
  long timeout_ms;
  int depth;     /* queries in flight on a shared conn before another conn is used */
  int cork;      /* send several queued queries as one TCP segment */
  th_list all;   /* every th__conn (zeroed: empty) */
  th_list idle;  /* idle connections, the most recently used first */
  th_list dirty; /* connections with unsent queries */
  int n_total, n_connecting, n_idle, n_held, n_shared, n_shared_busy, n_draining;
  th__wlist wait;            /* acquire() */
  th__rlist qwait;           /* standalone queries without a conn */
  uv_timer_t wait_timer;     /* fires at the deadline of the oldest waiter */
  uv_timer_t health_timer;   /* readiness check; unref'd */
  uv_prepare_t flush;        /* sends the queries queued during the loop turn */
  uv_timer_t retry_timer;    /* dispatches again when a connect backoff ends */
  uint64_t connect_after_ms; /* no new connection before (after failed attempts) */
  long connect_backoff_ms;   /* 0 after a success; doubles per failure, to BACKOFF_MAX_MS */
  uint64_t last_ok_ms;
  int reported[3];
} th__pg_pool_t;

/* The pool of this process (pool.c). */
extern th__pg_pool_t th__pg_pool;
#define P th__pg_pool

/* The first connection of P.idle or P.dirty (by their links), or NULL. */
static inline th__conn *th__pg_idle_first(void) {
  return th__pg_pool.idle.next && !th_list_empty(&th__pg_pool.idle)
             ? th_list_entry(th__pg_pool.idle.next, th__conn, idle_link)
             : NULL;
}
static inline th__conn *th__pg_dirty_first(void) {
  return th__pg_pool.dirty.next && !th_list_empty(&th__pg_pool.dirty)
             ? th_list_entry(th__pg_pool.dirty.next, th__conn, dirty_link)
             : NULL;
}

static inline void *th__pg_xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  if (!p) abort();
  return p;
}

static inline char *th__pg_xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) abort();
  return p;
}

/* libpq messages end with a newline and may span lines: keep the first line. */
static inline void th__pg_copy_line(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  if (!src) src = "";
  while (src[n] && src[n] != '\n' && n + 1 < cap) {
    dst[n] = src[n];
    n++;
  }
  dst[n] = 0;
}

static inline uint64_t th__pg_now_ms(void) { return uv_now(th_loop()); }

/* conn.c */
void th__pg_clear_outcome(th__conn *c);
void th__pg_conn_close_io(th__conn *c);
void th__pg_conn_connect_failed(th__conn *c, const char *msg);
void th__pg_conn_destroy(th__conn *c);
void th__pg_conn_fail_all(th__conn *c, const char *msg, const char *sqlstate);
void th__pg_conn_hold(th__conn *c);
void th__pg_conn_lost(th__conn *c, const char *why);
int th__pg_conn_rewatch(th__conn *c);
void th__pg_conn_share(th__conn *c);
int th__pg_conn_start(void);
void th__pg_conn_to_idle(th__conn *c);
void th__pg_conn_unshare(th__conn *c);
void th__pg_conn_unwatch(th__conn *c);
void th__pg_dirty_remove(th__conn *c);
void th__pg_idle_remove(th__conn *c);
void th__pg_q_push(th__conn *c, th__req *r);
void th__pg_q_remove(th__conn *c, th__req *r);

/* query.c */
void th__pg_conn_attach(th__conn *c, th__req *r, const char *sql);
void th__pg_conn_attach_plain(th__conn *c, int kind, const char *sql);
void th__pg_on_flush(uv_prepare_t *h);
void th__pg_read_results(th__conn *c);
void th__pg_req_cancel(th_ctx *ctx, void *data);
void th__pg_req_finish(th__req *r);
void th__pg_req_free(th__req *r);
void th__pg_req_set_error(th__req *r, const char *msg, const char *sqlstate);

/* pool.c */
void th__pg_arm_wait_timer(void);
void th__pg_conn_release(th__conn *c);
void th__pg_connect_backoff(void);
/* Queue r's coroutine (r answered) to be resumed from the loop, before it polls again. */
void th__pg_req_resume_later(th__req *r);
void th__pg_on_retry(uv_timer_t *t);
th__conn *th__pg_pick_shared(void);
void th__pg_pool_config(void);
void th__pg_pool_dispatch(void);
void th__pg_pool_init(void);
void th__pg_push_handle(lua_State *L, th__conn *c);
void th__pg_qwait_fail_all(const char *msg, const char *sqlstate);
void th__pg_report_metrics(void);
void th__pg_rl_push(th__rlist *l, th__req *r);
void th__pg_rl_remove(th__rlist *l, th__req *r);
th__conn *th__pg_take_idle(void);
th__conn *th__pg_take_shared_empty(void);
void th__pg_waiter_fail(th__waiter *w, const char *msg, const char *sqlstate);
void th__pg_wl_push(th__wlist *l, th__waiter *w);
void th__pg_wl_remove(th__wlist *l, th__waiter *w);

/* lua.c: take the PGconn out of the connection handle at idx (which must be
 * open, idle and outside a transaction; raises otherwise). The pool forgets the
 * connection and the handle is released; the caller owns the PGconn. */
PGconn *th__pg_conn_detach(lua_State *L, int idx);

/* decode.c: push the rows of r (an array of column name -> typed value
 * tables, JSON-array marked) and the affected count (or nil): 2 values. May
 * raise (memory, undecodable json); r stays owned by the caller. */
void th__pg_push_rows(lua_State *L, PGresult *r);

/* listen.c: register the listener metatable; `listener` function; close every
 * listener's socket (shutdown). */
void th__pg_listen_register(lua_State *L);
int th__pg_listener_new(lua_State *L);
void th__pg_listeners_shutdown(void);

#endif

/* prim/pg/pool.c: the pool of the pg primitive, one per worker process, shared
 * by every bundle state.
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
 * Owns: the pool P (static), every th__waiter (malloc'd by acquire, freed when
 * resumed or cancelled), and the pool's timers and flush (uv_prepare_t) handle.
 * Waiters handed a connection and finished queries are resumed through the
 * runtime's one resume-later queue (runtime/later.h), before the loop next polls
 * (TH_LATER_BEFORE_POLL): never from inside the Lua call (a release) that made
 * them ready, and ahead of the requests the next poll reads.
 */
#include <errno.h>
#include <stdio.h>

#include "prim/pg/pg.h"
#include "prim/pg/pg_internal.h"
#include "runtime/config.h"
#include "runtime/metrics.h"

th__pg_pool_t th__pg_pool;

static void on_wait_timeout(uv_timer_t *t);

void th__pg_report_metrics(void) {
  int v[3] = {P.n_held + P.n_shared_busy, P.n_idle + P.n_shared - P.n_shared_busy,
              P.wait.n + P.qwait.n};
  if (memcmp(v, P.reported, sizeof v) == 0) return;
  memcpy(P.reported, v, sizeof v);
  th_metrics_pool(v[0], v[1], v[2]);
}

/* ---- lists ------------------------------------------------------------- */

void th__pg_wl_push(th__wlist *l, th__waiter *w) {
  if (!l->list.next) th_list_init(&l->list);
  th_list_push_back(&l->list, &w->link);
  l->n++;
}

void th__pg_wl_remove(th__wlist *l, th__waiter *w) {
  th_list_remove(&w->link);
  l->n--;
}

void th__pg_rl_push(th__rlist *l, th__req *r) {
  if (!l->list.next) th_list_init(&l->list);
  th_list_push_back(&l->list, &r->link);
  l->n++;
}

void th__pg_rl_remove(th__rlist *l, th__req *r) {
  th_list_remove(&r->link);
  l->n--;
}

void th__pg_arm_wait_timer(void) {
  if (P.closed) return;
  uint64_t d = UINT64_MAX;
  if (th__pg_wl_head(&P.wait)) d = th__pg_wl_head(&P.wait)->deadline_ms;
  if (th__pg_rl_head(&P.qwait) && th__pg_rl_head(&P.qwait)->deadline_ms < d)
    d = th__pg_rl_head(&P.qwait)->deadline_ms;
  if (d == UINT64_MAX) {
    uv_timer_stop(&P.wait_timer);
    return;
  }
  uint64_t now = th__pg_now_ms();
  uv_timer_start(&P.wait_timer, on_wait_timeout, d > now ? d - now : 0, 0);
}

/* ---- waiters (acquire) ------------------------------------------------- */

/* A waiter's resume: its connection handle, or nil, message[, sqlstate]. */
static int waiter_results(th_later *l, lua_State *co) {
  th__waiter *w = th_list_entry(l, th__waiter, later);
  if (!co || P.closed) { /* shutdown: its coroutine was cancelled, nobody resumes */
    free(w);
    return -1;
  }
  int nres;
  lua_checkstack(co, 3);
  if (w->conn) {
    th__pg_push_handle(co, w->conn);
    nres = 1;
  } else {
    lua_pushnil(co);
    lua_pushstring(co, w->err);
    nres = 2;
    if (w->sqlstate[0]) lua_pushstring(co, w->sqlstate), nres = 3;
  }
  free(w);
  th__pg_report_metrics();
  return nres;
}

/* Move a queued waiter to the resume-later queue: the loop resumes it, never
 * from inside the Lua call (release) that made it ready. */
static void waiter_ready(th__waiter *w) {
  th__pg_wl_remove(&P.wait, w);
  w->where = W_READY;
  th_later_queue(&w->later, w->ctx, TH_LATER_BEFORE_POLL, waiter_results);
}

/* A finished query's resume: RQ_QUERY reads its outcome with r:rows(); conn:query
 * gets true (the outcome moves to the connection, for conn:rows()) or nil,
 * message, sqlstate[, constraint]. */
static int req_results(th_later *l, lua_State *co) {
  th__req *r = th_list_entry(l, th__req, later);
  r->ctx = NULL;
  if (!co || P.closed) { /* shutdown: its coroutine was cancelled, nobody resumes */
    if (r->kind == RQ_CONN || !r->ud) th__pg_req_free(r);
    return -1;
  }
  th__pg_report_metrics();
  if (r->kind == RQ_QUERY) return 0;
  th__conn *c = r->owner;
  int nres = 1;
  th__pg_clear_outcome(c);
  lua_checkstack(co, 4);
  if (r->errmsg) {
    lua_pushnil(co);
    lua_pushstring(co, r->errmsg);
    lua_pushstring(co, r->sqlstate);
    nres = 3;
    if (r->constraint[0]) lua_pushstring(co, r->constraint), nres = 4;
  } else {
    c->result = r->result;
    r->result = NULL;
    lua_pushboolean(co, 1);
  }
  th__pg_req_free(r);
  return nres;
}

void th__pg_req_resume_later(th__req *r) {
  th_later_queue(&r->later, r->ctx, TH_LATER_BEFORE_POLL, req_results);
}

void th__pg_waiter_fail(th__waiter *w, const char *msg, const char *sqlstate) {
  th__pg_copy_line(w->err, sizeof w->err, msg);
  snprintf(w->sqlstate, sizeof w->sqlstate, "%s", sqlstate ? sqlstate : "");
  waiter_ready(w);
}

void th__pg_push_handle(lua_State *L, th__conn *c) {
  th__conn **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = c;
  c->handle = 1;
  luaL_setmetatable(L, CONN_MT);
}

/* Standalone queries waiting for a connection fail (a connection attempt failed
 * and no other is underway). */
void th__pg_qwait_fail_all(const char *msg, const char *sqlstate) {
  th__req *r;
  while ((r = th__pg_rl_head(&P.qwait))) {
    th__pg_rl_remove(&P.qwait, r);
    th__pg_req_set_error(r, msg, sqlstate);
    th__pg_req_finish(r);
  }
}

/* A connection attempt failed: the next one waits, 50 ms doubling to BACKOFF_MAX_MS, so
 * that a database that is down is not hammered (and the loop does not spin on it). */
void th__pg_connect_backoff(void) {
  long b = P.connect_backoff_ms ? P.connect_backoff_ms * 2 : BACKOFF_MIN_MS;
  P.connect_backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
  P.connect_after_ms = th__pg_now_ms() + (uint64_t)P.connect_backoff_ms;
}

void th__pg_on_retry(uv_timer_t *t) {
  (void)t;
  th__pg_pool_dispatch();
}

/* ---- pool -------------------------------------------------------------- */

/* Whether an open connection's socket shows no close or error. Reading here
 * catches a backend that was terminated since the loop last looked. */
static int conn_alive(th__conn *c) {
  return PQconsumeInput(c->pg) && PQstatus(c->pg) == CONNECTION_OK && !PQisBusy(c->pg);
}

/* An idle connection that is still open, taken out of P.idle (not yet held or
 * shared: the caller decides). */
th__conn *th__pg_take_idle(void) {
  th__conn *c;
  while ((c = th__pg_idle_first())) {
    th__pg_idle_remove(c);
    if (conn_alive(c)) return c;
    th_log(NULL, "info", "pg: dropping a closed idle connection");
    th__pg_conn_destroy(c);
  }
  return NULL;
}

/* A shared connection with nothing in flight, unshared, for acquire(). */
th__conn *th__pg_take_shared_empty(void) {
  for (th__conn *c = th__pg_conn_first(), *next; c; c = next) {
    next = th__pg_conn_next(c);
    if (!c->shared || c->q.n || !c->pg) continue;
    th__pg_conn_unshare(c);
    if (conn_alive(c)) return c;
    th__pg_conn_destroy(c);
  }
  return NULL;
}

/* Queries in flight, and a penalty when the oldest has waited more than
 * STALL_MS: its backend is stalled (descheduled, a slow query), and whatever is
 * queued behind it waits as long. */
static int conn_load(th__conn *c) {
  th__req *h = th__pg_rl_head(&c->q);
  int load = c->q.n;
  if (h && h->sent && th__pg_now_ms() - h->sent_ms > STALL_MS) load += 1 << 16;
  return load;
}

/* The connection a standalone query goes to, or NULL (then it waits). */
th__conn *th__pg_pick_shared(void) {
  for (;;) {
    th__conn *best = NULL;
    int best_load = 0;
    for (th__conn *c = th__pg_conn_first(); c; c = th__pg_conn_next(c)) {
      if (!c->shared || c->draining || !c->pg || c->q.n >= P.depth) continue;
      int load = conn_load(c);
      if (!best || load < best_load) best = c, best_load = load;
    }
    if (best && best->q.n == 0 && th__pg_now_ms() - best->empty_since_ms >= IDLE_CHECK_MS &&
        !conn_alive(best)) {
      th__pg_conn_lost(best, "server closed the connection");
      continue;
    }
    if (best && best->q.n == 0) return best;
    /* Spread to an idle connection before queueing behind another query. */
    if (!th__pg_wl_head(&P.wait)) {
      th__conn *c = th__pg_take_idle();
      if (c) {
        th__pg_conn_share(c);
        return c;
      }
      if (P.n_total < P.size && P.n_connecting == 0) th__pg_conn_start();
    }
    return best; /* NULL when every shared connection is full: wait in P.qwait */
  }
}

void th__pg_pool_dispatch(void) {
  if (P.closed) return;
  for (;;) {
    th__waiter *w = th__pg_wl_head(&P.wait);
    th__req *q = th__pg_rl_head(&P.qwait);
    if (!w && !q) break;
    int tx_first = w && (!q || w->deadline_ms <= q->deadline_ms);
    th__conn *c = th__pg_take_idle();
    if (!c && tx_first) c = th__pg_take_shared_empty();
    if (!c) break;
    if (tx_first) {
      th__pg_conn_hold(c);
      w->conn = c;
      waiter_ready(w);
    } else {
      th__pg_conn_share(c);
      while ((q = th__pg_rl_head(&P.qwait)) && c->q.n < P.depth) {
        th__pg_rl_remove(&P.qwait, q);
        th__pg_conn_attach(c, q, q->sql);
      }
    }
  }
  /* Open connections for the waiters (standalone queries share one). */
  for (;;) {
    int tx_need = P.wait.n - P.n_draining;
    int need = (tx_need > 0 ? tx_need : 0) + (P.qwait.n ? 1 : 0);
    if (need <= P.n_connecting || P.n_total >= P.size) break;
    int rc = th__pg_conn_start();
    if (rc == -EAGAIN || (rc < 0 && !th__pg_wl_head(&P.wait) && !th__pg_rl_head(&P.qwait))) break;
  }
  /* Still short for acquire(): shared connections stop taking queries and go
   * to the waiters once their queries answered. */
  int shortfall = P.wait.n - P.n_connecting - P.n_draining;
  for (th__conn *c = th__pg_conn_first(); c && shortfall > 0; c = th__pg_conn_next(c))
    if (c->shared && !c->draining && c->q.n > 0) {
      c->draining = 1;
      P.n_draining++;
      shortfall--;
    }
  th__pg_arm_wait_timer();
  th__pg_report_metrics();
}

/* Give a connection back: reset a pending transaction, drop a broken one. */
void th__pg_conn_release(th__conn *c) {
  if (!c->held || c->op) return;
  c->begin_pending = 0;
  c->commit_pending = 0;
  if (P.closed || c->broken || !c->pg || c->q.n || PQstatus(c->pg) != CONNECTION_OK) {
    th__pg_conn_destroy(c); /* a query still in flight was abandoned: its answer is lost */
    th__pg_pool_dispatch();
    return;
  }
  th__pg_clear_outcome(c);
  if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
    c->op = OP_RESET; /* stays held until the ROLLBACK answers */
    th__pg_conn_attach_plain(c, RQ_RESET, "ROLLBACK");
    th__pg_conn_rewatch(c);
    return;
  }
  P.n_held--;
  c->held = 0;
  th__pg_conn_to_idle(c);
  th__pg_pool_dispatch();
}

static void on_health(uv_timer_t *t) {
  (void)t;
  uint64_t now = th__pg_now_ms();
  /* libpq does not time out a polled connect: do it here. */
  for (th__conn *c = th__pg_conn_first(), *next; c; c = next) {
    next = th__pg_conn_next(c);
    if ((c->io == IO_CONNECT || c->io == IO_SETUP) && now - c->started_ms > CONNECT_TIMEOUT_MS)
      th__pg_conn_connect_failed(c, "timeout");
  }
  if (th__pg_wl_head(&P.wait) || th__pg_rl_head(&P.qwait)) return;
  if (th__pg_idle_first()) {
    th__conn *c = th__pg_take_idle();
    if (!c) return;
    th__pg_conn_hold(c);
    c->op = OP_PING;
    th__pg_conn_attach_plain(c, RQ_PING, "SELECT 1");
    th__pg_conn_rewatch(c);
  } else if (P.n_total == 0) {
    th__pg_conn_start(); /* becomes idle when it connects: that counts as success */
  } else if (now - P.last_ok_ms >= HEALTH_EVERY_MS) {
    for (th__conn *c = th__pg_conn_first(); c; c = th__pg_conn_next(c))
      if (c->shared && !c->draining && c->q.n == 0 && c->pg) {
        th__pg_conn_attach_plain(c, RQ_PING, "SELECT 1"); /* in the pipeline, no hold */
        th__pg_conn_rewatch(c);
        break;
      }
  }
  th__pg_report_metrics();
}

/* Settings only (no handles): safe before the worker's loop exists. */
void th__pg_pool_config(void) {
  static int done;
  if (done) return;
  done = 1;
  /* Validated by runtime/config.c (environment, then flags). */
  P.url = th_cfg.database_url && *th_cfg.database_url ? th_cfg.database_url : NULL;
  P.size = th_cfg.pg_pool_size;
  P.timeout_ms = th_cfg.pg_pool_timeout_ms;
  P.depth = th_cfg.pg_pipeline_depth;
  P.cork = th_cfg.pg_pipeline_cork;
  P.reported[0] = P.reported[1] = P.reported[2] = -1;
}

/* Handles on th_loop(). Done on first use (acquire, th_pg_ready), never at
 * require time: `run` loads bundles once on a throwaway loop before the
 * workers start their own. */
void th__pg_pool_init(void) {
  if (P.inited) return;
  P.inited = 1;
  th__pg_pool_config();
  uv_timer_init(th_loop(), &P.wait_timer);
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
  uint64_t now = th__pg_now_ms();
  while (th__pg_wl_head(&P.wait) && th__pg_wl_head(&P.wait)->deadline_ms <= now)
    th__pg_waiter_fail(th__pg_wl_head(&P.wait), "pool timeout", "");
  th__req *r;
  while ((r = th__pg_rl_head(&P.qwait)) && r->deadline_ms <= now) {
    th__pg_rl_remove(&P.qwait, r);
    th__pg_req_set_error(r, "pool timeout", "");
    th__pg_req_finish(r);
  }
  th__pg_arm_wait_timer();
  th__pg_report_metrics();
}

/* ---- public C API (pg.h) ----------------------------------------------- */

int th_pg_ready(void) {
  th__pg_pool_init();
  if (!P.url) return 1;
  if (P.closed || !P.last_ok_ms) return 0;
  return th__pg_now_ms() - P.last_ok_ms <= READY_WINDOW_MS;
}

void th_pg_shutdown(void) {
  if (!P.inited || P.closed) return;
  P.closed = 1;
  /* Waiters and answers still in the resume-later queue are dropped when it gets to
   * them (waiter_results, req_results): their coroutines were cancelled. */
  th__pg_qwait_fail_all("shutting down", "");
  for (th__conn *c = th__pg_conn_first(), *next; c; c = next) {
    next = th__pg_conn_next(c);
    if (c->q.n) th_log(NULL, "warn", "pg: shutdown with a query still waiting");
    if (c->handle) {
      th__pg_conn_fail_all(c, "shutting down", "");
      th__pg_dirty_remove(c);
      th__pg_conn_close_io(c); /* the handle's release frees it */
    } else {
      th__pg_conn_destroy(c);
    }
  }
  uv_close((uv_handle_t *)&P.wait_timer, NULL);
  uv_close((uv_handle_t *)&P.health_timer, NULL);
  uv_close((uv_handle_t *)&P.retry_timer, NULL);
  uv_close((uv_handle_t *)&P.flush, NULL);
  th__pg_listeners_shutdown();
}

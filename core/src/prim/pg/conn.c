/* prim/pg/conn.c: one libpq connection of the pg primitive: connecting
 * (non-blocking, with a deadline and a backoff after failures), the session
 * settings, entering pipeline mode, the socket watcher, and what happens when
 * the server goes away. See pool.c for how connections are shared.
 *
 * Owns: every th__conn (malloc'd by th__pg_conn_start, freed by
 * th__pg_conn_destroy, or by the release of the Lua handle holding it when it
 * broke while held) and each conn's uv_poll_t (malloc'd, freed in its close
 * callback).
 */
#include <errno.h>
#include <stdio.h>

#include "prim/pg/pg_internal.h"
#include "runtime/config.h"
#include "runtime/log.h"

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- the socket watcher ------------------------------------------------ */

static void poll_close_cb(uv_handle_t *h) { free(h); }

void th__pg_conn_unwatch(th__conn *c) {
  if (!c->poll) return;
  uv_close((uv_handle_t *)c->poll, poll_close_cb);
  c->poll = NULL;
}

/* Watch the socket. fresh: replace the uv_poll (during connect libpq may close
 * the socket and open another, possibly with the same number, so the old
 * watcher must go before the new one is registered). The handle keeps the
 * loop alive only while something waits on it. */
static int conn_watch(th__conn *c, int events, int fresh) {
  if (fresh) th__pg_conn_unwatch(c);
  if (!c->poll) {
    int fd = PQsocket(c->pg);
    if (fd < 0) return -EBADF;
    c->poll = th__pg_xcalloc(1, sizeof *c->poll);
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

int th__pg_conn_rewatch(th__conn *c) {
  return conn_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0), 0);
}

/* ---- connection lifetime ----------------------------------------------- */

void th__pg_idle_remove(th__conn *c) {
  if (!c->in_idle) return;
  th_list_remove(&c->idle_link);
  c->in_idle = 0;
  P.n_idle--;
}

void th__pg_dirty_remove(th__conn *c) {
  if (!c->dirty) return;
  th_list_remove(&c->dirty_link);
  c->dirty = 0;
}

void th__pg_clear_outcome(th__conn *c) {
  if (c->result) PQclear(c->result);
  c->result = NULL;
  free(c->errmsg);
  c->errmsg = NULL;
  c->sqlstate[0] = 0;
}

void th__pg_conn_share(th__conn *c) {
  c->shared = 1;
  P.n_shared++;
  if (c->q.n) P.n_shared_busy++;
}

void th__pg_conn_unshare(th__conn *c) {
  if (!c->shared) return;
  if (c->draining) P.n_draining--;
  if (c->q.n) P.n_shared_busy--;
  c->shared = c->draining = 0;
  P.n_shared--;
}

void th__pg_conn_hold(th__conn *c) {
  c->held = 1;
  P.n_held++;
}

void th__pg_q_push(th__conn *c, th__req *r) {
  r->where = RW_PIPE;
  r->conn = c;
  th__pg_rl_push(&c->q, r);
  if (c->q.n == 1 && c->shared) P.n_shared_busy++;
  if (!c->unsent) c->unsent = r;
  if (!c->dirty) {
    c->dirty = 1;
    if (!P.dirty.next) th_list_init(&P.dirty);
    th_list_push_front(&P.dirty, &c->dirty_link);
  }
  if (!P.closed) uv_prepare_start(&P.flush, th__pg_on_flush);
}

void th__pg_q_remove(th__conn *c, th__req *r) {
  if (c->unsent == r) c->unsent = th__pg_rl_next(&c->q, r);
  th__pg_rl_remove(&c->q, r);
  r->conn = NULL;
  if (c->q.n == 0) {
    if (c->shared) P.n_shared_busy--;
    c->empty_since_ms = th__pg_now_ms();
    c->unsent = NULL;
    th__pg_dirty_remove(c);
  }
}

/* Take every req off the connection: internal ones are freed, the others fail
 * with msg (once each). */
void th__pg_conn_fail_all(th__conn *c, const char *msg, const char *sqlstate) {
  th__req *r;
  while ((r = th__pg_rl_head(&c->q))) {
    th__pg_q_remove(c, r);
    if (r->kind == RQ_RESET || r->kind == RQ_PING) {
      th__pg_req_free(r);
      continue;
    }
    th__pg_req_set_error(r, msg, sqlstate);
    th__pg_req_finish(r);
  }
}

/* Close the socket and libpq side; the struct stays (a handle may point at it). */
void th__pg_conn_close_io(th__conn *c) {
  th__pg_conn_unwatch(c);
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  c->broken = 1;
}

void th__pg_conn_destroy(th__conn *c) {
  th__pg_idle_remove(c);
  th__pg_conn_fail_all(c, "connection lost", "08006");
  th__pg_dirty_remove(c);
  th__pg_conn_close_io(c);
  if (c->io == IO_CONNECT || c->io == IO_SETUP) P.n_connecting--;
  if (c->held) P.n_held--;
  th__pg_conn_unshare(c);
  th__pg_clear_outcome(c);
  for (int i = 0; i < c->nstmts; i++)
    free(c->stmts[i].sql);
  th_list_remove(&c->link);
  P.n_total--;
  free(c);
}

void th__pg_conn_to_idle(th__conn *c) {
  c->held = 0;
  if (!P.idle.next) th_list_init(&P.idle);
  th_list_push_front(&P.idle, &c->idle_link);
  c->in_idle = 1;
  P.n_idle++;
  conn_watch(c, UV_READABLE, 0); /* notice a server-side close while idle */
}

void th__pg_conn_connect_failed(th__conn *c, const char *msg) {
  char buf[256];
  snprintf(buf, sizeof buf, "connection failed: %s", msg ? msg : "unknown error");
  th__pg_copy_line(buf, sizeof buf, buf);
  th_log(NULL, "warn", "pg: %s", buf);
  th__pg_conn_destroy(c);
  th__pg_connect_backoff();
  /* Tell one waiter that has no other attempt underway why it cannot go on. */
  if (P.wait.n > P.n_connecting)
    th__pg_waiter_fail(th__pg_wl_head(&P.wait), buf, "08001");
  else if (th__pg_rl_head(&P.qwait) && P.n_connecting == 0 && P.n_shared == 0)
    th__pg_qwait_fail_all(buf, "08001");
  th__pg_pool_dispatch();
}

/* Server notices (and the FATAL a terminated backend sends) go to the log,
 * not to stderr as libpq does by default. */
static void on_notice(void *arg, const char *message) {
  (void)arg;
  char line[512];
  th__pg_copy_line(line, sizeof line, message);
  th_log(NULL, "debug", "pg: %s", line);
}

int th__pg_conn_start(void) {
  uint64_t now = th__pg_now_ms();
  if (now < P.connect_after_ms) {
    if (!uv_is_active((uv_handle_t *)&P.retry_timer))
      uv_timer_start(&P.retry_timer, th__pg_on_retry, P.connect_after_ms - now, 0);
    return -EAGAIN;
  }
  const char *kw[] = {"dbname", "fallback_application_name", NULL};
  const char *val[] = {P.url, "todo-host", NULL};
  th__conn *c = th__pg_xcalloc(1, sizeof *c);
  c->pg = PQconnectStartParams(kw, val, 1);
  if (!c->pg) abort();
  PQsetNoticeProcessor(c->pg, on_notice, NULL);
  if (!P.all.next) th_list_init(&P.all);
  th_list_push_front(&P.all, &c->link);
  P.n_total++;
  P.n_connecting++;
  c->io = IO_CONNECT;
  c->started_ms = th__pg_now_ms();
  if (PQstatus(c->pg) == CONNECTION_BAD || conn_watch(c, UV_WRITABLE, 1) < 0) {
    char msg[256], buf[300];
    th__pg_copy_line(msg, sizeof msg, PQerrorMessage(c->pg));
    th__pg_conn_destroy(c);
    th__pg_connect_backoff();
    th_log(NULL, "warn", "pg: connection failed: %s", msg);
    snprintf(buf, sizeof buf, "connection failed: %s", msg);
    if (th__pg_wl_head(&P.wait))
      th__pg_waiter_fail(th__pg_wl_head(&P.wait), buf, "08001");
    else if (th__pg_rl_head(&P.qwait) && P.n_connecting == 0 && P.n_shared == 0)
      th__pg_qwait_fail_all(buf, "08001");
    return -ECONNREFUSED;
  }
  return 0;
}

static void connect_step(th__conn *c) {
  switch (PQconnectPoll(c->pg)) {
  case PGRES_POLLING_READING:
    if (conn_watch(c, UV_READABLE, 1) < 0) th__pg_conn_connect_failed(c, "cannot watch the socket");
    return;
  case PGRES_POLLING_WRITING:
    if (conn_watch(c, UV_WRITABLE, 1) < 0) th__pg_conn_connect_failed(c, "cannot watch the socket");
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
      th__pg_conn_connect_failed(c, "cannot watch the socket");
      return;
    }
    char setup[160];
    snprintf(setup, sizeof setup, "SET TimeZone='UTC'; SET DateStyle='ISO'; SET plan_cache_mode=%s",
             th_cfg.pg_plan_cache_mode ? th_cfg.pg_plan_cache_mode : "auto");
    if (!PQsendQuery(c->pg, setup) || PQflush(c->pg) < 0)
      th__pg_conn_connect_failed(c, PQerrorMessage(c->pg));
    return;
  default: th__pg_conn_connect_failed(c, PQerrorMessage(c->pg)); return;
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
        th__pg_copy_line(m, sizeof m, PQresultErrorMessage(r));
        PQclear(r);
        th__pg_conn_connect_failed(c, m);
        return;
      }
      PQclear(r);
      continue;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD || !PQenterPipelineMode(c->pg)) {
      th__pg_conn_connect_failed(c, PQerrorMessage(c->pg));
      return;
    }
    c->io = IO_READY;
    P.n_connecting--;
    P.last_ok_ms = th__pg_now_ms();
    P.connect_backoff_ms = 0;
    P.connect_after_ms = 0;
    th__pg_conn_to_idle(c);
    th__pg_pool_dispatch();
    return;
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) th__pg_conn_connect_failed(c, PQerrorMessage(c->pg));
}

/* The server went away or the protocol broke: every query queued on the
 * connection fails once with "connection lost"; the connection is dropped (or,
 * held by a Lua handle, closed now and dropped on release). */
void th__pg_conn_lost(th__conn *c, const char *why) {
  char msg[256];
  th__pg_copy_line(msg, sizeof msg, why);
  if (c->io == IO_CONNECT || c->io == IO_SETUP) {
    th__pg_conn_connect_failed(c, msg);
    return;
  }
  th_log(NULL, "warn", "pg: connection lost: %s", msg);
  th__pg_conn_fail_all(c, "connection lost", "08006");
  th__pg_dirty_remove(c);
  if (!c->handle) {
    th__pg_conn_destroy(c);
    th__pg_pool_dispatch();
    return;
  }
  c->op = OP_NONE;
  th__pg_conn_close_io(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  th__conn *c = h->data;
  if (c->io == IO_CONNECT) {
    connect_step(c);
    return;
  }
  if (status < 0) {
    th__pg_conn_lost(c, uv_strerror(status));
    return;
  }
  if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
    th__pg_conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  if (c->flushing) {
    int f = PQflush(c->pg);
    if (f < 0) {
      th__pg_conn_lost(c, PQerrorMessage(c->pg));
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
      th__pg_conn_lost(c, "server closed the connection");
      return;
    }
    th__pg_conn_rewatch(c);
    return;
  }
  th__pg_read_results(c);
}

/* prim/pg/query.c: a query's round trip on one connection of the pg primitive.
 *
 * A query is a th__req appended to a connection's FIFO: [BEGIN] [Parse]
 * Bind/Execute [COMMIT] Sync, each query with its own Sync so that an error in
 * one never aborts another. Queries are queued during a loop turn and sent at
 * the turn's end (a uv_prepare_t, before the loop blocks): several queries on
 * one connection go out corked (TCP_CORK) as one segment. Results come back in
 * order and are matched FIFO (a query ends with its PGRES_PIPELINE_SYNC).
 * Statements are prepared once per connection and cached by their text.
 *
 * Owns: every th__req (malloc'd, freed by the last of: its Lua result handle
 * "th.pg.result" (__gc), its completion when nobody holds it any more, the
 * resume of conn:query) and the results a req holds (PGresult, error text)
 * until r:rows() takes them or the req is freed.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

#include "prim/pg/pg_internal.h"

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

void th__pg_req_free(th__req *r) {
  req_free_params(r);
  req_clear_outcome(r);
  free(r->sql);
  free(r);
}

void th__pg_req_set_error(th__req *r, const char *msg, const char *sqlstate) {
  req_clear_outcome(r);
  r->errmsg = th__pg_xstrdup(msg);
  snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate ? sqlstate : "");
}

/* A standalone query or conn:query is over (answered or failed): hand it to its
 * coroutine through the resume-later queue, or free it when nobody will read it. */
void th__pg_req_finish(th__req *r) {
  r->where = RW_DONE;
  r->conn = NULL;
  req_free_params(r);
  if (P.closed) r->ctx = NULL; /* shutdown: the coroutines were cancelled */
  int orphan = r->kind == RQ_CONN ? !r->ctx : !r->ud;
  if (orphan) {
    th__pg_req_free(r);
    return;
  }
  if (r->ctx && !P.closed) th__pg_req_resume_later(r);
}

void th__pg_req_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th__req *r = data;
  r->ctx = NULL;
  if (th_later_queued(&r->later)) {
    th_later_remove(&r->later);
  } else if (r->where == RW_QWAIT) {
    th__pg_rl_remove(&P.qwait, r);
    r->where = RW_DONE;
    th__pg_arm_wait_timer();
    th__pg_report_metrics();
  } else if (r->where == RW_PIPE) {
    return; /* the answer will come: dropped then (the FIFO must stay in step) */
  }
  if (r->kind == RQ_CONN || !r->ud) th__pg_req_free(r);
}

/* ---- statement cache ---- */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
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
void th__pg_conn_attach(th__conn *c, th__req *r, const char *sql) {
  uint64_t h = fnv1a(sql);
  int slot = cache_find(c, sql, h);
  if (slot >= 0) {
    memcpy(r->stmt_name, c->stmts[slot].name, sizeof r->stmt_name);
    free(r->sql);
    r->sql = NULL;
  } else {
    if (sql != r->sql) r->sql = th__pg_xstrdup(sql);
    r->parse = 1;
    if (c->nstmts < STMT_CACHE_MAX) {
      th__stmt *st = &c->stmts[c->nstmts++];
      st->hash = h;
      st->sql = th__pg_xstrdup(sql);
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
  th__pg_q_push(c, r);
}

void th__pg_conn_attach_plain(th__conn *c, int kind, const char *sql) {
  th__req *r = th__pg_xcalloc(1, sizeof *r);
  r->kind = kind;
  r->plain = sql;
  th__pg_q_push(c, r);
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
  int corked = P.cork && c->cork >= 0 && th__pg_rl_next(&c->q, c->unsent);
  if (corked) set_cork(c, 1);
  for (th__req *r = c->unsent; r; r = th__pg_rl_next(&c->q, r)) {
    if (!send_req(c, r)) {
      th__pg_conn_lost(c, PQerrorMessage(c->pg));
      return;
    }
    r->sent = 1;
    r->sent_ms = th__pg_now_ms();
    req_free_params(r);
    free(r->sql);
    r->sql = NULL;
  }
  c->unsent = NULL;
  if (corked && c->cork > 0) set_cork(c, 0);
  int f = PQflush(c->pg);
  if (f < 0) {
    th__pg_conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  c->flushing = f == 1;
  /* A send that could not finish makes libpq read what the server sent
   * meanwhile: those answers sit in its buffer and the socket will not tell. */
  th__pg_read_results(c);
}

void th__pg_on_flush(uv_prepare_t *h) {
  uv_prepare_stop(h);
  th__conn *c;
  while ((c = th__pg_dirty_first())) {
    th_list_remove(&c->dirty_link);
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
      th__pg_copy_line(line, sizeof line, m ? m : PQresultErrorMessage(res));
      th__pg_req_set_error(r, line, s);
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
  th__pg_q_remove(c, r);
  if (r->forced && r->result) {
    PQclear(r->result);
    r->result = NULL;
  }
  if (r->errmsg) {
    if (r->parse_failed && r->stmt_name[0]) {
      /* The statement does not exist: the queries behind that counted on it
       * fail with this error, not with "prepared statement does not exist". */
      cache_forget(c, r->stmt_name);
      for (th__req *o = th__pg_rl_head(&c->q); o; o = th__pg_rl_next(&c->q, o))
        if (!o->parse && !o->plain && !o->forced && strcmp(o->stmt_name, r->stmt_name) == 0) {
          th__pg_req_set_error(o, r->errmsg, r->sqlstate);
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
    P.last_ok_ms = th__pg_now_ms();
  }
  if (r->kind == RQ_RESET || r->kind == RQ_PING) {
    if (c->op) {
      c->op_done = 1;
      c->op_ok = !r->errmsg;
    }
    th__pg_req_free(r);
    return;
  }
  th__pg_req_finish(r);
}

/* After the results were read: a finished internal op or a drained shared
 * connection goes back to the pool. May free c. */
static void conn_settle(th__conn *c) {
  if (c->op && c->op_done && c->q.n == 0) {
    int ok = c->op_ok && !c->broken && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    c->op = OP_NONE;
    c->op_done = 0;
    if (!ok) {
      th__pg_conn_destroy(c);
    } else {
      P.n_held--;
      th__pg_conn_to_idle(c);
    }
    th__pg_pool_dispatch();
    return;
  }
  if (c->shared && c->draining && c->q.n == 0) {
    th__pg_conn_unshare(c);
    th__pg_conn_to_idle(c);
    th__pg_pool_dispatch();
    return;
  }
  /* Waiting queries take it even while an acquire() waits too: the acquire()
   * has its draining connections. Left free, this connection went unused until
   * that transaction ended or a newer query came (pg_spec: "gives a freed
   * connection to a waiting query while a transaction waits too"). */
  if (c->shared && !c->draining && th__pg_rl_head(&P.qwait)) {
    th__req *q;
    while ((q = th__pg_rl_head(&P.qwait)) && c->q.n < P.depth) {
      th__pg_rl_remove(&P.qwait, q);
      th__pg_conn_attach(c, q, q->sql);
    }
    th__pg_arm_wait_timer();
  }
  if (th__pg_conn_rewatch(c) < 0) th__pg_conn_lost(c, "cannot watch the socket");
}

void th__pg_read_results(th__conn *c) {
  int nulls = 0;
  while (th__pg_rl_head(&c->q) && th__pg_rl_head(&c->q)->sent && !PQisBusy(c->pg)) {
    PGresult *res = PQgetResult(c->pg);
    if (!res) {
      if (++nulls >= 2) break; /* nothing more is pending in libpq */
      continue;
    }
    nulls = 0;
    th__req *r = th__pg_rl_head(&c->q);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      req_complete(c, r);
      continue;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      /* COPY is not supported through this API: the connection cannot go on. */
      PQclear(res);
      th__pg_q_remove(c, r);
      if (r->kind == RQ_RESET || r->kind == RQ_PING) {
        th__pg_req_free(r);
      } else {
        th__pg_req_set_error(r, "COPY is not supported by pg.query", "0A000");
        th__pg_req_finish(r);
      }
      th__pg_conn_lost(c, "unexpected COPY");
      return;
    }
    req_keep(r, res);
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    th__pg_conn_lost(c, PQerrorMessage(c->pg));
    return;
  }
  conn_settle(c);
}

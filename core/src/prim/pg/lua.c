/* prim/pg/lua.c: the "pg.core" Lua API of the pg primitive: acquire/release of
 * held connections, conn:query and its transaction helpers, standalone
 * pipelined queries with their result handles, pool stats, and the checks that
 * turn Lua values into query parameters. Rows are built by r:rows() /
 * conn:rows() inside the coroutine (decode.c), so a memory error while building
 * rows is an ordinary Lua error. The facade core/lua/pg.lua is the documented
 * API. Listeners: listen.c.
 */
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "json/json.h"
#include "prim/pg/pg_internal.h"
#include "prim/primitives.h"

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
  if (lua_type(L, i) == LUA_TBOOLEAN) return th__pg_xstrdup(lua_toboolean(L, i) ? "true" : "false");
  if (lua_type(L, i) == LUA_TSTRING) return th__pg_xstrdup(lua_tostring(L, i));
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
  return th__pg_xstrdup(tmp);
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
  r->params = n > 0 ? th__pg_xcalloc((size_t)n, sizeof *r->params) : NULL;
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
  th__pg_clear_outcome(c);
  if (c->broken || !c->pg) {
    lua_pushnil(L);
    lua_pushliteral(L, "connection lost");
    lua_pushliteral(L, "08006");
    return 3;
  }
  if (is_copy(sql)) return push_copy_refused(L);
  th__req *r = th__pg_xcalloc(1, sizeof *r);
  r->kind = RQ_CONN;
  r->owner = c;
  params_take(L, 3, n, r);
  th__pg_conn_attach(c, r, sql);
  th__pg_conn_rewatch(c);
  r->ctx = ctx;
  return th_yield(L, th__pg_req_cancel, r);
}

/*** The rows of the last successful query, then forgets them.
 * @function conn:rows
 * @treturn table array of rows (column name -> typed value), JSON-array marked
 * @treturn ?integer rows affected (INSERT/UPDATE/DELETE/SELECT count), or nil
 */
static int l_rows(lua_State *L) {
  th__conn *c = check_conn(L);
  th__pg_push_rows(L, c->result);
  th__pg_clear_outcome(c);
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
  th__pg_conn_release(c);
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
  th__pg_conn_unwatch(c);
  PGconn *pg = c->pg;
  c->pg = NULL;
  th__pg_clear_outcome(c);
  *cud = NULL;
  c->handle = 0;
  th__pg_conn_destroy(c);
  th__pg_pool_dispatch();
  return pg;
}

static void waiter_cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th__waiter *w = data;
  if (w->where == W_QUEUED)
    th__pg_wl_remove(&P.wait, w);
  else
    th_later_remove(&w->later);
  th__conn *c = w->conn;
  free(w);
  if (c)
    th__pg_conn_release(c);
  else
    th__pg_pool_dispatch();
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
  th__pg_pool_init();
  if (!P.url || P.closed) return push_no_pool(L);
  th_ctx *ctx = th_ctx_check(L, "pg.acquire");
  if (!th__pg_wl_head(&P.wait)) {
    th__conn *c = th__pg_take_idle();
    if (!c) c = th__pg_take_shared_empty();
    if (c) {
      th__pg_conn_hold(c);
      th__pg_push_handle(L, c);
      th__pg_report_metrics();
      return 1;
    }
  }
  th__waiter *w = th__pg_xcalloc(1, sizeof *w);
  w->ctx = ctx;
  w->deadline_ms = th__pg_now_ms() + (uint64_t)P.timeout_ms;
  w->where = W_QUEUED;
  th__pg_wl_push(&P.wait, w);
  th__pg_pool_dispatch();
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
  th__pg_pool_init();
  if (!P.url || P.closed) return push_no_pool(L);
  th_ctx_check(L, "pg query");
  int n = params_check(L, 2);
  if (is_copy(sql)) return push_copy_refused(L);
  th__res *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->req = NULL;
  luaL_setmetatable(L, RESULT_MT);
  th__req *r = th__pg_xcalloc(1, sizeof *r);
  r->kind = RQ_QUERY;
  r->ud = ud;
  ud->req = r;
  params_take(L, 2, n, r);
  th__conn *c = th__pg_pick_shared();
  if (c) {
    th__pg_conn_attach(c, r, sql);
    th__pg_conn_rewatch(c);
  } else {
    r->sql = th__pg_xstrdup(sql);
    r->where = RW_QWAIT;
    r->deadline_ms = th__pg_now_ms() + (uint64_t)P.timeout_ms;
    th__pg_rl_push(&P.qwait, r);
    th__pg_pool_dispatch();
  }
  th__pg_report_metrics();
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
  return th_yield(L, th__pg_req_cancel, r);
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
  if (r->where == RW_DONE && !th_later_queued(&r->later)) {
    th__pg_req_free(r);
  } else if (r->where == RW_QWAIT) {
    th__pg_rl_remove(&P.qwait, r);
    th__pg_req_free(r);
    th__pg_arm_wait_timer();
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
  th__pg_pool_config();
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

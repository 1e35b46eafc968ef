/* http/lua_bridge.c: the bridge between an HTTP request and a Lua handler.
 *
 * Builds the request object a handler receives (method, path, params, query,
 * query_all, headers, body, id, and req:json()), starts the handler in its own
 * coroutine, and turns what it returns (status, body, headers) into a response.
 * Everything the request object holds is copied into Lua, so the connection
 * may go away while the handler runs; its answer is then dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "json/json.h"

/* query (first value of each name) and query_all (every value, in order). */
static void push_query(lua_State *L, const char *q, size_t n) {
  lua_newtable(L); /* query */
  lua_newtable(L); /* query_all */
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&')
      j++;
    if (j > i) {
      const char *eq = memchr(q + i, '=', j - i);
      size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
      const char *v = eq ? eq + 1 : q + j;
      size_t vlen = eq ? (size_t)(q + j - v) : 0;
      th_push_urldecoded(L, q + i, klen, 1); /* key */
      th_push_urldecoded(L, v, vlen, 1);     /* value */
      /* query_all[key] */
      lua_pushvalue(L, -2);
      if (lua_rawget(L, -4) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        th_mark_array(L);
        lua_pushvalue(L, -3);
        lua_pushvalue(L, -2);
        lua_rawset(L, -6);
      }
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
      lua_pop(L, 1);
      /* query[key] keeps the first value */
      lua_pushvalue(L, -2);
      if (lua_rawget(L, -5) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_rawset(L, -4);
      } else {
        lua_pop(L, 3);
      }
    }
    i = j + 1;
  }
}

/* req:json() -> value | nil, err */
static int req_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  size_t len = 0;
  const char *body = lua_tolstring(L, -1, &len);
  if (!body || len == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "empty body");
    return 2;
  }
  if (th_json_decode(L, body, len) < 0) {
    lua_pushfstring(L, "malformed JSON: %s", lua_tostring(L, -1));
    lua_pushnil(L);
    lua_replace(L, -3);
    return 2;
  }
  return 1;
}

static void push_request_mt(th_state *s, lua_State *co) {
  if (s->req_mt_ref == LUA_NOREF) {
    lua_State *L = s->L;
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, req_json);
    lua_setfield(L, -2, "json");
    lua_setfield(L, -2, "__index");
    s->req_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(co, LUA_REGISTRYINDEX, s->req_mt_ref);
}

static void push_request(lua_State *L, th_state *s, th_request *r, const th_route *route) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, r->url.data, r->path_len);
  lua_setfield(L, -2, "path");
  th_route_push_params(L, route, r->url.data, r->path_len);
  lua_setfield(L, -2, "params");
  if (r->path_len < r->url.len)
    push_query(L, r->url.data + r->path_len + 1, r->url.len - r->path_len - 1);
  else
    push_query(L, "", 0);
  lua_setfield(L, -3, "query_all");
  lua_setfield(L, -2, "query");
  lua_createtable(L, 0, r->nheaders);
  for (int i = 0; i < r->nheaders; i++) {
    const th_header *h = &r->headers[i];
    lua_pushlstring(L, r->hbuf.data + h->name_off, h->name_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {
      /* Repeated header: join with ", " as RFC 9110 allows. */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, r->hbuf.data + h->value_off, h->value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, r->hbuf.data + h->value_off, h->value_len);
    }
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  if (r->body.len) {
    lua_pushlstring(L, r->body.data, r->body.len);
    lua_setfield(L, -2, "body");
  }
  lua_pushstring(L, r->request_id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, route->pattern);
  lua_setfield(L, -2, "route");
  char client[48];
  th__client_address(r, client, sizeof client);
  lua_pushstring(L, r->peer);
  lua_setfield(L, -2, "peer_address");
  lua_pushstring(L, client);
  lua_setfield(L, -2, "client_address");
  push_request_mt(s, L);
  lua_setmetatable(L, -2);
}

static int header_token_ok(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 32 || c >= 127 || c == ':') return 0;
  }
  return 1;
}

static int header_value_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return 0;
  return 1;
}

static int reserved_header(const char *name, size_t n) {
  static const char *reserved[] = {"content-length",    "date", "connection", "x-request-id",
                                   "transfer-encoding", NULL};
  for (const char **r = reserved; *r; r++)
    if (strlen(*r) == n && !strncasecmp(*r, name, n)) return 1;
  return 0;
}

/* Reads status, body, headers from the handler's results into res. Returns
 * NULL, or a message describing what the handler returned wrong. */
static const char *collect_response(th_ctx *ctx, int nres, th_response *res, th_buf *body) {
  lua_State *co = ctx->co;
  int base = lua_gettop(co) - nres + 1;
  if (nres < 1) return "the handler returned no status";
  int isnum = 0;
  lua_Integer status = lua_tointegerx(co, base, &isnum);
  if (!isnum || status < 100 || status > 599)
    return "the handler's first result must be an HTTP status (100-599)";
  res->status = (int)status;
  int has_ctype = 0;
  if (nres >= 3 && !lua_isnil(co, base + 2)) {
    if (!lua_istable(co, base + 2)) return "the handler's third result (headers) must be a table";
    lua_pushnil(co);
    while (lua_next(co, base + 2)) {
      size_t kn, vn;
      if (lua_type(co, -2) != LUA_TSTRING ||
          !(lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER)) {
        lua_pop(co, 2);
        return "response headers must map names to strings";
      }
      const char *k = lua_tolstring(co, -2, &kn);
      lua_pushvalue(co, -1);
      const char *v = lua_tolstring(co, -1, &vn);
      if (!header_token_ok(k, kn) || !header_value_ok(v, vn)) {
        lua_pop(co, 3);
        return "a response header has an invalid name or value";
      }
      if (!reserved_header(k, kn)) {
        if (kn == 12 && !strncasecmp(k, "content-type", 12)) has_ctype = 1;
        th_buf_add(&res->headers, k, kn);
        th_buf_add(&res->headers, ": ", 2);
        th_buf_add(&res->headers, v, vn);
        th_buf_add(&res->headers, "\r\n", 2);
      }
      lua_pop(co, 2);
    }
  }
  if (nres >= 2) {
    int t = lua_type(co, base + 1);
    if (t == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(co, base + 1, &n);
      th_buf_add(body, s, n);
      if (!has_ctype) th_buf_adds(&res->headers, "Content-Type: text/plain; charset=utf-8\r\n");
    } else if (t == LUA_TTABLE || t == LUA_TLIGHTUSERDATA || t == LUA_TBOOLEAN ||
               t == LUA_TNUMBER) {
      if (th_json_encode(co, base + 1, body) < 0) {
        th_log(ctx, "error", "cannot encode the response body as JSON: %s", lua_tostring(co, -1));
        lua_pop(co, 1);
        return "the response body cannot be encoded as JSON";
      }
      if (!has_ctype) th_buf_adds(&res->headers, "Content-Type: application/json\r\n");
    } else if (t != LUA_TNIL) {
      return "the handler's second result (body) must be a string, a table or nil";
    }
  }
  res->body = body->data;
  res->body_len = body->len;
  return NULL;
}

static void on_handler_done(th_ctx *ctx, int status, int nres) {
  th_conn *conn = ctx->owner;
  th_response res = {0};
  th_buf body = {0};
  res.route = ctx->route_pattern;
  res.metrics = ctx->route_metrics;
  res.cpu_ns = th_ctx_cpu_ns(ctx);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(ctx->co, -1);
    th_log(ctx, "error", "handler failed: %s", msg ? msg : "(no message)");
  } else {
    const char *problem = collect_response(ctx, nres, &res, &body);
    if (problem) {
      th_log(ctx, "error", "%s", problem);
      status = LUA_ERRRUN;
    }
  }
  if (!th_conn_closed(conn)) {
    if (status != LUA_OK) {
      /* The code and message of lua/web/errors.lua's `internal`. */
      char msg[128];
      snprintf(msg, sizeof msg, "something went wrong on our side; quote request id %s",
               ctx->request_id[0] ? ctx->request_id : "?");
      th_conn_error(conn, 500, "internal_error", msg);
    } else {
      th_conn_respond(conn, &res);
    }
  }
  th_buf_free(&res.headers);
  th_buf_free(&body);
  th_ctx_release(ctx);
  th_http_dispatch_done(conn);
}

void th_http_dispatch(th_conn *conn, th_request *req, const th_route *route) {
  th_ctx *ctx = th_ctx_new(route->state, TH_CTX_REQUEST);
  ctx->owner = conn;
  ctx->done = on_handler_done;
  ctx->route_pattern = route->pattern;
  ctx->route_metrics = route->metrics;
  snprintf(ctx->request_id, sizeof ctx->request_id, "%s", req->request_id);
  lua_State *co = ctx->co;
  lua_rawgeti(co, LUA_REGISTRYINDEX, route->handler_ref);
  push_request(co, route->state, req, route);
  th_ctx_start(ctx, 1);
}

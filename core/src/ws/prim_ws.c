/* ws/prim_ws.c: the Lua module "ws.core" (facade: core/lua/ws.lua) and the calls of a
 * bundle's WebSocket handlers.
 *
 * A connection is a full userdata holding a pointer to its th_ws_conn (NULL once the
 * connection is finished), with a uservalue table for the bundle's own fields. Its
 * handlers (on_open, on_message, on_close of the manifest's `websocket` table) run
 * each in its own coroutine (a th_ctx) of the state that accepted the connection,
 * like a request, so they may use pg, http and the bus. That state stays open while
 * the connection lives (SIGHUP: connections stay on the generation that accepted
 * them; sends to a user reach the connections of every generation, they are C-side).
 * The struct is freed after on_close returned; the userdata may outlive it.
 */
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "prim/primitives.h"
#include "runtime/metrics.h"
#include "ws/ws.h"

#define CONN_MT "todo-host.ws.conn"

static int stopping; /* shutdown: no more handlers */

typedef struct {
  th_ws_conn *c;
} conn_ud;

static th_ws_conn *check_conn(lua_State *L, int idx) {
  conn_ud *u = luaL_checkudata(L, idx, CONN_MT);
  return u->c;
}

/* The text of a message argument: a string as is, anything else as JSON (into buf). */
static const char *message_text(lua_State *L, int idx, th_buf *buf, size_t *len) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tolstring(L, idx, len);
  if (lua_type(L, idx) != LUA_TTABLE) luaL_argerror(L, idx, "a string or a table");
  if (th_json_encode(L, idx, buf) < 0) {
    th_buf_free(buf);
    lua_error(L);
  }
  *len = buf->len;
  return buf->data ? buf->data : "";
}

static uint64_t opt_seq(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_Integer seq = luaL_checkinteger(L, idx);
  luaL_argcheck(L, seq > 0, idx, "a sequence number must be positive");
  return (uint64_t)seq;
}

/* conn:send(text_or_table[, seq]) -> true | nil, err */
static int conn_send(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  th_buf buf = {0};
  size_t len;
  const char *text = message_text(L, 2, &buf, &len);
  uint64_t seq = opt_seq(L, 3);
  int rc = -1;
  if (c) rc = seq ? th_ws__send_seq(c, text, len, seq) : th_ws__send(c, text, len);
  th_buf_free(&buf);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushstring(L, "closed");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:close([code[, reason]]) */
static int conn_close(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  lua_Integer code = luaL_optinteger(L, 2, 1000);
  const char *reason = luaL_optstring(L, 3, "");
  luaL_argcheck(L, code == 1000 || (code >= 3000 && code <= 4999) || code == 1008 || code == 1011,
                2, "close code must be 1000, 1008, 1011 or 3000-4999");
  if (c) th_ws__close(c, (int)code, reason);
  return 0;
}

/* conn:replay_begin(): sequenced sends are held until replay_end. */
static int conn_replay_begin(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  if (c) c->replaying = 1;
  return 0;
}

/* conn:replay_end(last): the replay sent everything up to `last`; held messages
 * above it follow, in order. */
static int conn_replay_end(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  lua_Integer last = luaL_checkinteger(L, 2);
  if (c) th_ws__end_replay(c, last > 0 ? (uint64_t)last : 0);
  return 0;
}

static const luaL_Reg conn_methods[] = {
    {"send", conn_send},
    {"close", conn_close},
    {"replay_begin", conn_replay_begin},
    {"replay_end", conn_replay_end},
    {NULL, NULL},
};

static int conn_index(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k) {
    for (const luaL_Reg *m = conn_methods; m->name; m++)
      if (!strcmp(m->name, k)) {
        lua_pushcfunction(L, m->func);
        return 1;
      }
    if (!strcmp(k, "open")) {
      lua_pushboolean(L, c && !c->closed && !c->close_code);
      return 1;
    }
    if (c && !strcmp(k, "user")) {
      lua_pushstring(L, c->user);
      return 1;
    }
    if (c && !strcmp(k, "id")) {
      lua_pushinteger(L, (lua_Integer)c->id);
      return 1;
    }
    if (c && !strcmp(k, "last_seq")) {
      lua_pushinteger(L, (lua_Integer)c->last_seq);
      return 1;
    }
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int conn_newindex(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && !strcmp(k, "last_seq")) {
    lua_Integer v = luaL_checkinteger(L, 3);
    if (c) c->last_seq = v > 0 ? (uint64_t)v : 0;
    return 0;
  }
  if (k && (!strcmp(k, "user") || !strcmp(k, "id") || !strcmp(k, "open")))
    return luaL_error(L, "conn.%s is read-only", k);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int conn_tostring(lua_State *L) {
  th_ws_conn *c = check_conn(L, 1);
  if (c)
    lua_pushfstring(L, "ws.conn %d (%s)", (int)c->id, c->user);
  else
    lua_pushliteral(L, "ws.conn (finished)");
  return 1;
}

/* ---- running the handlers ---------------------------------------------- */

static void finish(th_ws_conn *c) {
  th_state *s = c->state;
  lua_State *L = s->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->object_ref);
  conn_ud *u = lua_touserdata(L, -1);
  if (u) u->c = NULL;
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, c->object_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->endpoint_ref);
  free(c->user);
  free(c->protocol);
  free(c);
  s->inflight--;
  th_state_maybe_close(s);
}

static void on_done(th_ctx *ctx, int status, int nres) {
  (void)nres;
  th_ws_conn *c = ctx->owner;
  if (status != LUA_OK) {
    const char *msg = lua_tostring(ctx->co, -1);
    th_log(ctx, "error", "websocket handler failed: %s", msg ? msg : "(no message)");
  }
  int closing = ctx->route_pattern != NULL; /* marks the on_close run */
  th_ctx_release(ctx);
  if (closing) finish(c);
}

/* Start the endpoint's handler `name` with (conn, extra args already on L?) */
static int start(th_ws_conn *c, const char *name, int is_close, const char *data, size_t len,
                 int binary, int code) {
  if (stopping) return 0;
  lua_State *L = c->state->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->endpoint_ref);
  int t = lua_getfield(L, -1, name);
  lua_pop(L, 2);
  if (t != LUA_TFUNCTION) return 0;
  th_ctx *ctx = th_ctx_new(c->state, TH_CTX_EVENT);
  ctx->owner = c;
  ctx->done = on_done;
  ctx->route_pattern = is_close ? "ws.on_close" : NULL;
  snprintf(ctx->request_id, sizeof ctx->request_id, "ws-%llu", (unsigned long long)c->id);
  lua_State *co = ctx->co;
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->endpoint_ref);
  lua_getfield(co, -1, name);
  lua_remove(co, -2);
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->object_ref);
  int nargs = 1;
  if (data) {
    lua_pushlstring(co, data, len);
    lua_pushboolean(co, binary);
    nargs += 2;
  }
  if (is_close) {
    lua_pushinteger(co, code);
    nargs++;
  }
  th_ctx_start(ctx, nargs);
  return 1;
}

void th_ws__on_open(th_ws_conn *c) { start(c, "on_open", 0, NULL, 0, 0, 0); }

void th_ws__on_message(th_ws_conn *c, const char *data, size_t len, int binary) {
  start(c, "on_message", 0, data, len, binary, 0);
}

void th_ws__on_rate_limited(th_ws_conn *c) { start(c, "on_rate_limited", 0, NULL, 0, 0, 0); }

void th_ws__on_close(th_ws_conn *c, int code) {
  if (!start(c, "on_close", 1, NULL, 0, 0, code)) finish(c);
}

/* ---- module functions -------------------------------------------------- */

/* core.accept(endpoint, user[, protocol]) -> true | nil, message, status
 * From the handshake route's handler: hands this request's socket to libwebsockets,
 * which answers 101 and calls on_open. The handler's own answer is then dropped. */
static int l_accept(lua_State *L) {
  th_ctx *ctx = th_ctx_check(L, "ws.accept");
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *user = luaL_checkstring(L, 2);
  const char *protocol = luaL_optstring(L, 3, NULL);
  if (ctx->kind != TH_CTX_REQUEST) return luaL_error(L, "ws.accept: only in an HTTP handler");
  if (!th_ws__vhost()) {
    lua_pushnil(L);
    lua_pushliteral(L, "WebSocket is unavailable in this process");
    lua_pushinteger(L, 503);
    return 3;
  }
  if (th_ws__count() >= th_ws_cfg.max_connections) {
    lua_pushnil(L);
    lua_pushliteral(L, "this worker holds WS_MAX_CONNECTIONS connections already");
    lua_pushinteger(L, 503);
    return 3;
  }
  th_ws_conn *c = th_ws__conn_new(ctx->state, user);
  if (protocol) c->protocol = strdup(protocol);
  lua_pushvalue(L, 1);
  c->endpoint_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  conn_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->c = c;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, CONN_MT);
  c->object_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int rc = th_ws__adopt(ctx, c);
  if (rc < 0) {
    if (!c->closed) finish(c);
    lua_pushnil(L);
    lua_pushstring(L, rc == -2 ? "not a valid WebSocket upgrade" : "the connection went away");
    lua_pushinteger(L, rc == -2 ? 400 : 500);
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.send_user(user, text_or_table[, seq]) -> number of connections it was queued on.
 * Every connection of the user in this worker, whatever the generation. */
static int l_send_user(lua_State *L) {
  const char *user = luaL_checkstring(L, 1);
  th_buf buf = {0};
  size_t len;
  const char *text = message_text(L, 2, &buf, &len);
  uint64_t seq = opt_seq(L, 3);
  int n = 0;
  th_ws_conn *c = th_ws__user_first(user);
  while (c) {
    th_ws_conn *next = c->user_next;
    if (!strcmp(c->user, user)) {
      int rc = seq ? th_ws__send_seq(c, text, len, seq) : th_ws__send(c, text, len);
      if (rc == 0) n++;
    }
    c = next;
  }
  th_buf_free(&buf);
  lua_pushinteger(L, n);
  return 1;
}

/* core.count([user]) -> open connections of this worker (of one user). */
static int l_count(lua_State *L) {
  const char *user = luaL_optstring(L, 1, NULL);
  if (!user) {
    lua_pushinteger(L, th_ws__count());
    return 1;
  }
  int n = 0;
  for (th_ws_conn *c = th_ws__user_first(user); c; c = c->user_next)
    n += !strcmp(c->user, user);
  lua_pushinteger(L, n);
  return 1;
}

/* core.limits() -> the settings in force. */
static int l_limits(lua_State *L) {
  th_ws_read_config();
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, (lua_Integer)th_ws_cfg.send_queue_bytes);
  lua_setfield(L, -2, "send_queue_bytes");
  lua_pushinteger(L, (lua_Integer)th_ws_cfg.max_message_bytes);
  lua_setfield(L, -2, "max_message_bytes");
  lua_pushnumber(L, th_ws_cfg.rate_per_second);
  lua_setfield(L, -2, "rate_per_second");
  lua_pushnumber(L, th_ws_cfg.rate_burst);
  lua_setfield(L, -2, "rate_burst");
  lua_pushinteger(L, th_ws_cfg.ping_seconds);
  lua_setfield(L, -2, "ping_seconds");
  lua_pushinteger(L, th_ws_cfg.idle_timeout_seconds);
  lua_setfield(L, -2, "idle_timeout_seconds");
  lua_pushinteger(L, th_ws_cfg.max_connections);
  lua_setfield(L, -2, "max_connections");
  return 1;
}

int luaopen_th_ws_core(lua_State *L) {
  if (luaL_newmetatable(L, CONN_MT)) {
    lua_pushcfunction(L, conn_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {
      {"accept", l_accept}, {"send_user", l_send_user}, {"count", l_count}, {"limits", l_limits},
      {NULL, NULL},
  };
  luaL_newlib(L, fns);
  return 1;
}

/* ---- registration ------------------------------------------------------ */

void th_ws_register(void) {
  th_primitives_add("ws.core", luaopen_th_ws_core);
  th_ws_metrics_init();
  th_metrics_add_renderer(th_ws_metrics_render);
}

/* Shutdown: connections are closed by lws_context_destroy; their handlers no longer
 * run (the states are about to close), their structs are freed. */
void th_ws_stop_handlers(void);
void th_ws_stop_handlers(void) { stopping = 1; }

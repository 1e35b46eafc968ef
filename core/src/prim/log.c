/* prim/log.c: the `log` module: JSON lines from Lua with the request id of the
 * running unit of work. log.info(msg, fields) adds fields (a table) as members
 * (a `request_id` among them replaces the unit's), after the unit's log context
 * (task.log_context: a batch's member request ids) unless they name the same key. */
#include <string.h>

#include "json/json.h"
#include "prim/primitives.h"
#include "runtime/host.h"
#include "runtime/log.h"

/* Whether the fields table at 2 has a key that the log context `members` (its
 * JSON members) names too: one key per line, the call's own wins. */
static int has_context_key(lua_State *L, const char *members) {
  int found = 0;
  lua_pushnil(L);
  while (!found && lua_next(L, 2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *k = lua_tolstring(L, -1, &n);
      for (const char *p = members; (p = strchr(p, '"')) && !found; p++)
        if ((p == members || p[-1] == ',') && !strncmp(p + 1, k, n) && p[n + 1] == '"' &&
            p[n + 2] == ':')
          found = 1;
    }
  }
  if (found) lua_pop(L, 1); /* the key lua_next left */
  return found;
}

static int emit(lua_State *L, const char *level) {
  int lvl = th_log_level_num(level);
  size_t n;
  const char *msg = luaL_checklstring(L, 1, &n);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (!th_log_enabled(lvl)) return 0;
  th_buf fields = {0};
  if (lua_istable(L, 2) && th_json_encode(L, 2, &fields) < 0) {
    th_buf_free(&fields);
    return luaL_error(L, "log.%s: fields cannot be encoded: %s", level, lua_tostring(L, -1));
  }
  th_ctx *ctx = th_ctx_current(L);
  const char *request_id = ctx ? ctx->request_id : NULL;
  /* Fields that name a request_id of their own replace the unit's: one key per line. */
  if (request_id && lua_istable(L, 2)) {
    lua_pushliteral(L, "request_id");
    if (lua_rawget(L, 2) != LUA_TNIL) request_id = NULL;
    lua_pop(L, 1);
  }
  th_buf *b = th_log_begin(level, msg, n, request_id);
  if (ctx && ctx->log_fields && !(lua_istable(L, 2) && has_context_key(L, ctx->log_fields))) {
    th_buf_add(b, ",", 1);
    th_buf_adds(b, ctx->log_fields);
  }
  /* fields is a JSON object "{...}": splice its members in. */
  if (fields.len > 2 && fields.data[0] == '{') {
    th_buf_add(b, ",", 1);
    th_buf_add(b, fields.data + 1, fields.len - 2);
  }
  th_log_end(lvl);
  th_buf_free(&fields);
  return 0;
}

/*** Log at debug level. @tparam string msg @tparam[opt] table fields */
static int l_debug(lua_State *L) { return emit(L, "debug"); }
/*** Log at info level. @tparam string msg @tparam[opt] table fields */
static int l_info(lua_State *L) { return emit(L, "info"); }
/*** Log at warn level. @tparam string msg @tparam[opt] table fields */
static int l_warn(lua_State *L) { return emit(L, "warn"); }
/*** Log at error level. @tparam string msg @tparam[opt] table fields */
static int l_error(lua_State *L) { return emit(L, "error"); }

int luaopen_th_log(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"debug", l_debug}, {"info", l_info}, {"warn", l_warn}, {"error", l_error}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

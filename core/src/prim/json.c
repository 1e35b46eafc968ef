/* prim/json.c: the `json` module: encode (th_json_encode, json/encode.c, also
 * used by the host for response bodies and log fields), decode (th_json_decode,
 * json/decode.c, on yajl), json.null and json.array.
 */
#include "json/json.h"
#include "prim/primitives.h"
#include "runtime/host.h"

/*** Encode a value as JSON. Tables marked with json.array encode as arrays,
 * also when empty; integers print exactly, floats with 14 significant digits.
 * Raises on values JSON cannot hold (functions, NaN, cycles deeper than 128
 * levels).
 * @param value
 * @treturn string
 */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  th_buf b = {0};
  if (th_json_encode(L, 1, &b) < 0) {
    th_buf_free(&b);
    return luaL_error(L, "json.encode: %s", lua_tostring(L, -1));
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  th_buf_free(&b);
  return 1;
}

/*** Decode JSON text.
 * @tparam string text
 * @return the value (arrays marked with json.array, null as json.null), or nil
 * and "malformed JSON: ..." (invalid UTF-8 and nesting deeper than 128 levels
 * are malformed too)
 */
static int l_decode(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  if (th_json_decode(L, text, n) < 0) {
    lua_pushfstring(L, "malformed JSON: %s", lua_tostring(L, -1));
    lua_pushnil(L);
    lua_replace(L, -3);
    return 2;
  }
  return 1;
}

/*** Mark a table as a JSON array (so that {} encodes as []).
 * @tparam[opt] table t (a new table when absent)
 * @treturn table t
 */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  th_mark_array(L);
  return 1;
}

/*** Whether a table is marked as a JSON array. */
static int l_is_array(lua_State *L) {
  int yes = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, "th.json.array");
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

int luaopen_th_json(lua_State *L) {
  static const luaL_Reg fns[] = {{"encode", l_encode},
                                 {"decode", l_decode},
                                 {"array", l_array},
                                 {"is_array", l_is_array},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  th_push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}

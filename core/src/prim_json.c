/* prim_json.c: the `json` module: encoding on lua-cjson (th_json_encode, also
 * used by the host for response bodies and log fields), decoding on yajl
 * (json_decode.c).
 *
 * lua-cjson 2.1.0 (Debian's) encodes every empty table as {}. Tables marked with
 * json.array (the pg primitive and query_all mark theirs) must encode as [], so
 * th_json_encode gives each empty marked table one sentinel element for the
 * duration of the encode and rewrites ["<sentinel>"] to [] afterwards. The
 * sentinel holds bytes that are never valid UTF-8, which no accepted input can
 * contain.
 */
#include <string.h>

#include "host_internal.h"
#include "primitives.h"

int luaopen_cjson(lua_State *L);

#define SENTINEL "\xff\xfe th-empty-array \xfe\xff"
#define MAX_DEPTH 128

/* Loads cjson once per state, configured, and keeps its encoder in the
 * registry. Decoding is json_decode.c's (cjson cannot keep [] apart from {}). */
static void ensure_cjson(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "th.json.encode.raw") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_getfield(L, -1, "encode_max_depth");
  lua_pushinteger(L, MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "encode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "encode_number_precision");
  lua_pushinteger(L, 14);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "encode");
  lua_setfield(L, LUA_REGISTRYINDEX, "th.json.encode.raw");
  lua_pop(L, 1);
}

/* Collect empty marked arrays reachable from the value at idx into the list
 * table at list_idx. */
static void find_empty_arrays(lua_State *L, int idx, int list_idx, int depth) {
  if (depth > MAX_DEPTH || lua_type(L, idx) != LUA_TTABLE) return;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  if (!lua_next(L, idx)) {
    if (lua_getmetatable(L, idx)) {
      luaL_getmetatable(L, "th.json.array");
      int marked = lua_rawequal(L, -1, -2);
      lua_pop(L, 2);
      if (marked) {
        lua_pushvalue(L, idx);
        lua_rawseti(L, list_idx, (lua_Integer)luaL_len(L, list_idx) + 1);
      }
    }
    return;
  }
  do {
    if (lua_type(L, -1) == LUA_TTABLE) find_empty_arrays(L, -1, list_idx, depth + 1);
    lua_pop(L, 1);
  } while (lua_next(L, idx));
}

static void set_sentinels(lua_State *L, int list_idx, int on) {
  lua_Integer n = luaL_len(L, list_idx);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list_idx, i);
    if (on)
      lua_pushliteral(L, SENTINEL);
    else
      lua_pushnil(L);
    lua_rawseti(L, -2, 1);
    lua_pop(L, 1);
  }
}

int th_json_encode(lua_State *L, int idx, th_buf *out) {
  idx = lua_absindex(L, idx);
  ensure_cjson(L);
  lua_newtable(L);
  int list = lua_gettop(L);
  find_empty_arrays(L, idx, list, 0);
  int patched = luaL_len(L, list) > 0;
  if (patched) set_sentinels(L, list, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "th.json.encode.raw");
  lua_pushvalue(L, idx);
  int rc = lua_pcall(L, 1, 1, 0);
  if (patched) set_sentinels(L, list, 0);
  if (rc != LUA_OK) {
    lua_remove(L, list);
    return -1; /* message on top */
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  /* lua-cjson 2.1.0 writes every '/' as "\/"; valid, but noisy in paths and
   * zone names. cjson never emits a bare '/', so each "\/" it wrote is an
   * escaped slash (an escaped backslash is "\\" and is never followed by '/'). */
  if (!patched && !memchr(s, '/', n)) {
    th_buf_add(out, s, n);
  } else {
    /* Jump from one candidate to the next with memchr/memmem (a byte-by-byte
     * loop here cost as much as cjson's own encoding of a task list). */
    static const char pat[] = "[\"" SENTINEL "\"]";
    size_t plen = sizeof pat - 1;
    size_t start = 0, i = 0;
    const char *next_pat = patched ? memmem(s, n, pat, plen) : NULL;
    while (i < n) {
      const char *bs = memchr(s + i, '\\', n - i);
      if (next_pat && (!bs || next_pat < bs)) {
        size_t at = (size_t)(next_pat - s);
        th_buf_add(out, s + start, at - start);
        th_buf_add(out, "[]", 2);
        start = i = at + plen;
        next_pat = memmem(s + i, n - i, pat, plen);
        continue;
      }
      if (!bs) break;
      size_t at = (size_t)(bs - s);
      if (at + 1 < n && s[at + 1] == '/') {
        th_buf_add(out, s + start, at - start);
        th_buf_add(out, "/", 1);
        start = at + 2;
      }
      i = at + 2; /* an escape is two bytes at least: "\\" is one backslash, skipped whole */
    }
    th_buf_add(out, s + start, n - start);
  }
  lua_pop(L, 2);
  return 0;
}

/*** Encode a value as JSON. Tables marked with json.array encode as arrays,
 * also when empty. Raises on values JSON cannot hold (functions, NaN, cycles
 * deeper than 128 levels).
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
  ensure_cjson(L);
  luaL_newlib(L, fns);
  th_push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}

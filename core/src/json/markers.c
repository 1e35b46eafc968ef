/* markers.c: json.null and the json.array mark (see json.h). */
#include "json/json.h"

void th_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

void th_mark_array(lua_State *L) {
  if (luaL_getmetatable(L, TH_JSON_ARRAY_MT) == LUA_TNIL) {
    lua_pop(L, 1);
    luaL_newmetatable(L, TH_JSON_ARRAY_MT);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
  lua_setmetatable(L, -2);
}

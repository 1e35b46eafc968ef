/* primitives.c: the one table of C modules and the embedded Lua facades that
 * every state can require (see primitives.h). */
#include "prim/primitives.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prim/jwt.h"
#include "prim/pg/pg.h"
#include "runtime/later.h"

struct th_embedded {
  const char *name;
  const char *src;
  size_t len;
};
extern const struct th_embedded th_embedded_lua[];

static const luaL_Reg c_modules[] = {
    {"json", luaopen_th_json},
    {"timer", luaopen_th_timer},
    {"log", luaopen_th_log},
    {"pg.core", luaopen_th_pg_core},
    {"crypto", luaopen_th_crypto},
    {"jwt", luaopen_th_jwt},
    {"http.core", luaopen_th_http_core},
    {"tz", luaopen_th_tz},
    {"task", luaopen_th_task},
    {NULL, NULL},
};

/* Loader for an embedded facade: the source is compiled under its module name
 * so tracebacks read "[host] pg.lua:12". */
static int load_embedded(lua_State *L) {
  const struct th_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
  char chunk[96];
  snprintf(chunk, sizeof chunk, "@[host] %s.lua", e->name);
  if (luaL_loadbuffer(L, e->src, e->len, chunk) != LUA_OK) return lua_error(L);
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

/* Modules of folders above prim/ (ws/), added at start-up by main.c. */
#define MAX_ADDED 4
static luaL_Reg added[MAX_ADDED + 1];

void th_primitives_add(const char *name, lua_CFunction open) {
  for (int i = 0; i < MAX_ADDED; i++) {
    if (!added[i].name || !strcmp(added[i].name, name)) {
      added[i].name = name;
      added[i].func = open;
      return;
    }
  }
  abort(); /* a programming error: raise MAX_ADDED */
}

void th_primitives_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = c_modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  for (const luaL_Reg *m = added; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  for (const struct th_embedded *e = th_embedded_lua; e->name; e++) {
    lua_pushlightuserdata(L, (void *)e);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, e->name);
  }
  lua_pop(L, 1);
}

void th_primitives_shutdown(void) {
  th_pg_shutdown();
  th_http_shutdown();
  th_jwt_reset();
  th_later_shutdown(); /* the resume-later queue's handles (runtime/later.c) */
}

int th_embedded_exists(const char *name) {
  for (const struct th_embedded *e = th_embedded_lua; e->name; e++)
    if (!strcmp(e->name, name)) return 1;
  return 0;
}

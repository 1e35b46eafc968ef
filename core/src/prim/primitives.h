/* primitives.h: every Lua module the host provides from C, and the one table that
 * registers them in package.preload of each bundle state (primitives.c). Each
 * primitive is one file of prim/ (the pg primitive is the folder prim/pg/).
 * A primitive with a Lua facade registers its C part as "<name>.core"; the
 * facade core/lua/<name>.lua is embedded in the binary (embedded_lua.c). */
#ifndef TH_PRIMITIVES_H
#define TH_PRIMITIVES_H

#include <lua.h>

int luaopen_th_json(lua_State *L);      /* "json"      prim/json.c   */
int luaopen_th_timer(lua_State *L);     /* "timer"     prim/timer.c  */
int luaopen_th_log(lua_State *L);       /* "log"       prim/log.c    */
int luaopen_th_pg_core(lua_State *L);   /* "pg.core"   prim/pg/lua.c */
int luaopen_th_crypto(lua_State *L);    /* "crypto"    prim/crypto.c */
int luaopen_th_jwt(lua_State *L);       /* "jwt"       prim/jwt.c    */
int luaopen_th_http_core(lua_State *L); /* "http.core" prim/http.c   */
int luaopen_th_tz(lua_State *L);        /* "tz"        prim/tz.c     */
int luaopen_th_task(lua_State *L);      /* "task"      prim/task.c   */

/* Release what primitives hold process-wide (pool connections, the curl multi
 * handle, key sets) so the loop can close. Safe to call more than once.
 * th_pg_shutdown: prim/pg/pg.h; th_jwt_reset: prim/jwt.h. th_http_shutdown
 * (prim/http.c): the loop must run afterwards so the close callbacks can free
 * the curl handles. */
void th_http_shutdown(void);
/* Adds task.defer and task.event to the task table at the top of L. */
void th_task_sync_open(lua_State *L);
void th_primitives_shutdown(void);

/* Whether core/lua/NAME.lua is embedded (the `todo-host NAME` tools). */
int th_embedded_exists(const char *name);

/* Add a C module from a folder above prim/ (main.c, at start-up: ws/). */
void th_primitives_add(const char *name, lua_CFunction open);

/* Register every primitive and embedded facade in package.preload of L. */
void th_primitives_preload(lua_State *L);

#endif

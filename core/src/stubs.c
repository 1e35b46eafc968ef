/* stubs.c: weak stand-ins for primitives that are not built yet, so the host
 * links while they are written. A real definition in another file wins. Each
 * stub raises when required, naming what is missing. */
#include <lauxlib.h>

#include "primitives.h"

#define MISSING(fn, name)                                                              \
  __attribute__((weak)) int fn(lua_State *L) {                                          \
    return luaL_error(L, "the '%s' primitive is not built into this todo-host", name); \
  }

MISSING(luaopen_th_pg_core, "pg")
MISSING(luaopen_th_tz, "tz")

__attribute__((weak)) int th_pg_ready(void) { return 0; }
__attribute__((weak)) void th_pg_shutdown(void) {}

#include <stdio.h>
#include <stdlib.h>

__attribute__((weak)) int th_migrate(const char *database_url, char **bundle_dirs, int n_bundles) {
  (void)database_url;
  (void)bundle_dirs;
  (void)n_bundles;
  fprintf(stderr, "todo-host: migrations are not built into this todo-host\n");
  return -1;
}

/* Whether the process has a database to report on in /readyz. */
int th_pg_configured(void) {
  const char *url = getenv("DATABASE_URL");
  return url && *url;
}

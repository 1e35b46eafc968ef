/* pg_internal.h: what the three files of the pg primitive share.
 *   prim_pg.c    the pool, connections, pipelined queries and the "pg.core" module
 *   pg_decode.c  PGresult -> Lua rows (typed values)
 *   pg_listen.c  LISTEN/NOTIFY listeners built from a pooled connection
 * Nothing here is visible outside the primitive. */
#ifndef TH_PG_INTERNAL_H
#define TH_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define TH_PG_CONN_MT "th.pg.conn"

static inline void *th__pg_xcalloc(size_t n, size_t sz) {
  void *p = calloc(n, sz);
  if (!p) abort();
  return p;
}

/* libpq messages end with a newline and may span lines: keep the first line. */
static inline void th__pg_copy_line(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  if (!src) src = "";
  while (src[n] && src[n] != '\n' && n + 1 < cap) {
    dst[n] = src[n];
    n++;
  }
  dst[n] = 0;
}

/* pg_decode.c: push the rows of r (an array of column name -> typed value
 * tables, JSON-array marked) and the affected count (or nil): 2 values. May
 * raise (memory, undecodable json); r stays owned by the caller. */
void th__pg_push_rows(lua_State *L, PGresult *r);

/* prim_pg.c: take the PGconn out of the connection handle at idx (which must be
 * open, idle and outside a transaction; raises otherwise). The pool forgets the
 * connection and the handle is released; the caller owns the PGconn. */
PGconn *th__pg_conn_detach(lua_State *L, int idx);

/* pg_listen.c: register the listener metatable; `listener` function. */
void th__pg_listen_register(lua_State *L);
int th__pg_listener_new(lua_State *L);
/* pg_listen.c: close every listener's socket (shutdown). */
void th__pg_listeners_shutdown(void);

#endif

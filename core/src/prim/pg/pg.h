/* pg.h: what the host needs from the pg primitive (prim/pg/) besides the Lua
 * module "pg.core": a readiness probe for /readyz and the shutdown step.
 * The pool is per process (per worker) and shared by every bundle state. */
#ifndef TH_PG_H
#define TH_PG_H

/* 1 when the most recent connection attempt, query or periodic `SELECT 1`
 * (every 2 s on an idle pooled connection) succeeded within the last 5 s;
 * 0 otherwise. 1 when DATABASE_URL is not set (no database to depend on).
 * The first call starts the pool (and its health timer) if no bundle did. */
int th_pg_ready(void);

/* Close every connection and uv handle of the pool. Call after the Lua states
 * are closed (or at least after every waiting ctx was cancelled): afterwards
 * uv_loop_close can return 0. Connections still held by a Lua handle are
 * closed now and their memory freed when the handle is released or collected. */
void th_pg_shutdown(void);

#endif

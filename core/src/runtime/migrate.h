/* migrate.h: apply the SQL migrations of bundles (`todo-host migrate`, and
 * `run` with MIGRATE_ON_START=1). See migrate.c. */
#ifndef TH_MIGRATE_H
#define TH_MIGRATE_H

/* Apply <dir>/migrations/NNN_name.sql of every bundle dir, in number order,
 * each once, each in its own transaction, under a PostgreSQL advisory lock so
 * that replicas starting together are safe. The bundle name recorded is the
 * basename of its directory. Blocking (libpq), run before the loop serves.
 * Prints one line per applied migration on stdout; on failure prints
 * `migrate: <file>: <SQL error message>` on stderr and returns a negative
 * errno-style code (the transaction of the failing file is rolled back; the
 * files before it stay applied). Returns 0 when everything is applied. */
int th_migrate(const char *database_url, char **bundle_dirs, int n_bundles);

#endif

/* migrate.c: SQL migrations of bundles, applied with blocking libpq.
 *
 * Owns: one PGconn for the duration of th_migrate, the file list of one bundle
 * at a time (malloc'd names and contents, freed before the next bundle).
 * Layout: <bundle>/migrations/NNN_name.sql; NNN is the version (any number of
 * digits), applied in numeric order. The record is the table
 * todo_host_migrations(bundle, version, name, checksum, applied_at); checksum
 * is md5 of the file computed by the server, so it can be checked with psql.
 * Everything happens under a session advisory lock (MIGRATE_LOCK_KEY): a second
 * process waits, then finds the work done. A file is run with the simple query
 * protocol, so it may hold several statements; it must not COMMIT itself, and
 * statements that refuse transactions (CREATE INDEX CONCURRENTLY) cannot be used.
 */
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/migrate.h"

/* "todo-host migrations" as a fixed advisory lock key. */
#define MIGRATE_LOCK_KEY "7166716874616c6b"

typedef struct {
  long version;
  char *file; /* file name, e.g. 001_init.sql */
} th__mig;

static int cmp_mig(const void *a, const void *b) {
  long x = ((const th__mig *)a)->version, y = ((const th__mig *)b)->version;
  return (x > y) - (x < y);
}

/* The first line of a libpq error. */
static const char *err_line(const char *m, char *buf, size_t cap) {
  size_t n = 0;
  if (!m) m = "";
  if (!strncmp(m, "ERROR:  ", 8)) m += 8;
  while (m[n] && m[n] != '\n' && n + 1 < cap)
    buf[n] = m[n], n++;
  buf[n] = 0;
  return buf;
}

static const char *res_error(PGresult *r, PGconn *c, char *buf, size_t cap) {
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  return err_line(m ? m : (r ? PQresultErrorMessage(r) : PQerrorMessage(c)), buf, cap);
}

/* Run a command; 0 when it succeeded, else prints `migrate: <what>: <error>`. */
static int exec_ok(PGconn *c, const char *what, const char *sql, int n, const char *const *params) {
  PGresult *r = n ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    PQclear(r);
    return 0;
  }
  char buf[512];
  fprintf(stderr, "migrate: %s: %s\n", what, res_error(r, c, buf, sizeof buf));
  PQclear(r);
  return -EIO;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *s = malloc(cap);
  if (!s) abort();
  size_t got;
  while ((got = fread(s + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) {
      cap *= 2;
      s = realloc(s, cap);
      if (!s) abort();
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(s);
    return NULL;
  }
  s[len] = 0;
  return s;
}

/* NNN_name.sql -> version, or -1 when the name does not follow the pattern. */
static long parse_version(const char *name) {
  const char *p = name;
  long v = 0;
  if (*p < '0' || *p > '9') return -1;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p - '0');
    if (v > 1000000000L) return -1;
    p++;
  }
  size_t n = strlen(name);
  if (*p != '_' || n < 5 || strcmp(name + n - 4, ".sql") != 0) return -1;
  return v;
}

static int list_migrations(const char *dir, th__mig **out, int *n_out) {
  DIR *d = opendir(dir);
  *out = NULL;
  *n_out = 0;
  if (!d) return errno == ENOENT ? 0 : -errno; /* no migrations/ is fine */
  int n = 0, cap = 0;
  th__mig *m = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    long v = parse_version(e->d_name);
    if (v < 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      m = realloc(m, sizeof *m * (size_t)cap);
      if (!m) abort();
    }
    m[n].version = v;
    m[n].file = strdup(e->d_name);
    if (!m[n].file) abort();
    n++;
  }
  closedir(d);
  qsort(m, (size_t)n, sizeof *m, cmp_mig);
  for (int i = 1; i < n; i++)
    if (m[i].version == m[i - 1].version) {
      fprintf(stderr, "migrate: %s: %s and %s have the same number\n", dir, m[i - 1].file,
              m[i].file);
      for (int k = 0; k < n; k++)
        free(m[k].file);
      free(m);
      return -EINVAL;
    }
  *out = m;
  *n_out = n;
  return 0;
}

static const char *base_name(const char *path, char *buf, size_t cap) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--; /* "services/api/" -> "api" */
  size_t s = n;
  while (s > 0 && path[s - 1] != '/')
    s--;
  snprintf(buf, cap, "%.*s", (int)(n - s), path + s);
  return buf;
}

/* Apply one migration in its own transaction. */
static int apply_one(PGconn *c, const char *bundle, const char *path, const th__mig *m,
                     const char *sql) {
  char ver[32];
  snprintf(ver, sizeof ver, "%ld", m->version);
  if (exec_ok(c, path, "BEGIN", 0, NULL) < 0) return -EIO;
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    char buf[512];
    fprintf(stderr, "migrate: %s: %s\n", path, res_error(r, c, buf, sizeof buf));
    PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return -EIO;
  }
  PQclear(r);
  if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
    fprintf(stderr, "migrate: %s: the file must not end the transaction (COMMIT/ROLLBACK)\n", path);
    PQclear(PQexec(c, "ROLLBACK"));
    return -EINVAL;
  }
  const char *p[] = {bundle, ver, m->file, sql};
  if (exec_ok(c, path,
              "INSERT INTO todo_host_migrations (bundle, version, name, checksum, applied_at)"
              " VALUES ($1, $2::int, $3, md5($4), now())",
              4, p) < 0 ||
      exec_ok(c, path, "COMMIT", 0, NULL) < 0) {
    PQclear(PQexec(c, "ROLLBACK"));
    return -EIO;
  }
  printf("migrate: %s: applied %s\n", bundle, m->file);
  fflush(stdout);
  return 0;
}

static int migrate_bundle(PGconn *c, const char *dir) {
  char bundle[256], mdir[4096], path[4096 + 512];
  base_name(dir, bundle, sizeof bundle);
  snprintf(mdir, sizeof mdir, "%s/migrations", dir);
  th__mig *m;
  int n, rc = list_migrations(mdir, &m, &n);
  if (rc < 0) {
    if (rc != -EINVAL) fprintf(stderr, "migrate: %s: %s\n", mdir, strerror(-rc));
    return rc;
  }
  for (int i = 0; i < n && rc == 0; i++) {
    snprintf(path, sizeof path, "%s/%s", mdir, m[i].file);
    char *sql = read_file(path);
    if (!sql) {
      fprintf(stderr, "migrate: %s: %s\n", path, strerror(errno ? errno : EIO));
      rc = -EIO;
      break;
    }
    char ver[32];
    snprintf(ver, sizeof ver, "%ld", m[i].version);
    const char *p[] = {bundle, ver, sql};
    PGresult *r = PQexecParams(c,
                               "SELECT checksum = md5($3), name FROM todo_host_migrations"
                               " WHERE bundle = $1 AND version = $2::int",
                               3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      char buf[512];
      fprintf(stderr, "migrate: %s: %s\n", path, res_error(r, c, buf, sizeof buf));
      rc = -EIO;
    } else if (PQntuples(r) == 1) {
      /* applied already; a changed file is worth a warning, not a failure */
      if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
        fprintf(stderr, "migrate: warning: %s changed after it was applied (checksum differs)\n",
                path);
    } else {
      rc = apply_one(c, bundle, path, &m[i], sql);
    }
    PQclear(r);
    free(sql);
  }
  for (int i = 0; i < n; i++)
    free(m[i].file);
  free(m);
  return rc;
}

int th_migrate(const char *database_url, char **bundle_dirs, int n_bundles) {
  const char *kw[] = {"dbname", "fallback_application_name", NULL};
  const char *val[] = {database_url, "todo-host-migrate", NULL};
  PGconn *c = PQconnectdbParams(kw, val, 1);
  if (!c) abort();
  char buf[512];
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "migrate: cannot connect: %s\n", err_line(PQerrorMessage(c), buf, sizeof buf));
    PQfinish(c);
    return -ECONNREFUSED;
  }
  int rc = 0;
  /* Notices (CREATE TABLE IF NOT EXISTS ... skipping) are noise here. */
  if (exec_ok(c, "setup", "SET client_min_messages = warning", 0, NULL) < 0 ||
      exec_ok(c, "lock", "SELECT pg_advisory_lock(x'" MIGRATE_LOCK_KEY "'::bigint)", 0, NULL) < 0) {
    PQfinish(c);
    return -EIO;
  }
  rc = exec_ok(c, "setup",
               "CREATE TABLE IF NOT EXISTS todo_host_migrations ("
               " bundle text NOT NULL, version int NOT NULL, name text NOT NULL,"
               " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
               " PRIMARY KEY (bundle, version))",
               0, NULL);
  for (int i = 0; i < n_bundles && rc == 0; i++)
    rc = migrate_bundle(c, bundle_dirs[i]);
  /* The lock also goes with the session; unlock anyway to be explicit. */
  PQclear(PQexec(c, "SELECT pg_advisory_unlock(x'" MIGRATE_LOCK_KEY "'::bigint)"));
  PQfinish(c);
  return rc;
}

/* config.c: settings from the environment and flags (see config.h). Owns th_cfg;
 * string values point into the environment or argv, never freed (a database URL
 * read from the Dapr secrets API is a heap copy kept for the process's life). Also
 * the start-up checks of the secrets a cluster must set (th_config_resolve_secrets). */
#include "runtime/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/dapr_secret.h"

th_config th_cfg;

typedef enum { T_INT, T_SIZE, T_STR, T_BOOL, T_CHOICE } setting_type;

typedef struct {
  const char *env;  /* environment variable */
  const char *flag; /* command-line flag without the leading -- */
  setting_type type;
  void *field;
  long min, max;              /* for numbers */
  const char *const *choices; /* T_CHOICE: the accepted values, NULL-terminated */
} setting;

static const char *const LEVELS[] = {"debug", "info", "warn", "error", NULL};
static const char *const GC_MODES[] = {"generational", "incremental", NULL};
static const char *const PLAN_CACHE_MODES[] = {"auto", "force_generic_plan", "force_custom_plan",
                                               NULL};

static setting settings[] = {
    {"PORT", "port", T_INT, &th_cfg.port, 0, 65535, NULL},
    {"HOST", "host", T_STR, &th_cfg.host, 0, 0, NULL},
    {"WORKERS", "workers", T_INT, &th_cfg.workers, 1, 256, NULL},
    {"DATABASE_URL", "database-url", T_STR, &th_cfg.database_url, 0, 0, NULL},
    {"LOG_LEVEL", "log-level", T_CHOICE, &th_cfg.log_level, 0, 0, LEVELS},
    {"MAX_BODY_BYTES", "max-body", T_SIZE, &th_cfg.max_body, 0, 1L << 30, NULL},
    {"MAX_HEADER_BYTES", "max-header", T_SIZE, &th_cfg.max_header, 1024, 1L << 20, NULL},
    {"MAX_PENDING_OUTPUT_BYTES", "max-pending-output", T_SIZE, &th_cfg.max_pending_output, 4096,
     1L << 30, NULL},
    {"HEADER_TIMEOUT_MS", "header-timeout", T_INT, &th_cfg.header_timeout_ms, 10, 3600000, NULL},
    {"BODY_TIMEOUT_MS", "body-timeout", T_INT, &th_cfg.body_timeout_ms, 10, 3600000, NULL},
    {"KEEPALIVE_TIMEOUT_MS", "keepalive-timeout", T_INT, &th_cfg.keepalive_timeout_ms, 10, 3600000,
     NULL},
    {"SEND_TIMEOUT_MS", "send-timeout", T_INT, &th_cfg.send_timeout_ms, 10, 3600000, NULL},
    {"MIN_SEND_RATE_BYTES_PER_SECOND", "min-send-rate", T_SIZE, &th_cfg.min_send_rate, 0, 1L << 30,
     NULL},
    {"MAX_CONNECTIONS", "max-connections", T_INT, &th_cfg.max_connections, 1, 1000000, NULL},
    {"DRAIN_TIMEOUT_MS", "drain-timeout", T_INT, &th_cfg.drain_timeout_ms, 0, 3600000, NULL},
    {"DRAIN_IDLE_GRACE_MS", "drain-idle-grace", T_INT, &th_cfg.drain_idle_grace_ms, 0, 3600000,
     NULL},
    {"CPU_BUDGET_MS", "cpu-budget", T_INT, &th_cfg.cpu_budget_ms, 1, 3600000, NULL},
    {"BUNDLE_MEMORY_MB", "bundle-memory", T_SIZE, &th_cfg.bundle_memory, 1, 1L << 20, NULL},
    {"ACCESS_LOG", "access-log", T_BOOL, &th_cfg.access_log, 0, 1, NULL},
    {"LUA_GC", "lua-gc", T_CHOICE, &th_cfg.lua_gc, 0, 0, GC_MODES},
    {"PG_PLAN_CACHE_MODE", "pg-plan-cache-mode", T_CHOICE, &th_cfg.pg_plan_cache_mode, 0, 0,
     PLAN_CACHE_MODES},
    {"PG_POOL_SIZE", "pg-pool-size", T_INT, &th_cfg.pg_pool_size, 1, 1000, NULL},
    {"PG_POOL_TIMEOUT_MS", "pg-pool-timeout", T_INT, &th_cfg.pg_pool_timeout_ms, 0, 3600000, NULL},
    {"PG_PIPELINE_DEPTH", "pg-pipeline-depth", T_INT, &th_cfg.pg_pipeline_depth, 1, 1000, NULL},
    {"PG_PIPELINE_CORK", "pg-pipeline-cork", T_BOOL, &th_cfg.pg_pipeline_cork, 0, 1, NULL},
    {"TRUSTED_PROXIES", "trusted-proxies", T_STR, &th_cfg.trusted_proxies, 0, 0, NULL},
    {NULL, NULL, 0, NULL, 0, 0, NULL},
};

static void defaults(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  th_cfg.port = 8080;
  th_cfg.host = "0.0.0.0";
  th_cfg.workers = cpus > 0 ? (int)cpus : 1;
  th_cfg.database_url = NULL;
  th_cfg.log_level = "info";
  th_cfg.max_body = 1024 * 1024;
  th_cfg.max_header = 16 * 1024;
  th_cfg.max_pending_output = 256 * 1024;
  th_cfg.header_timeout_ms = 10000;
  th_cfg.body_timeout_ms = 30000;
  th_cfg.keepalive_timeout_ms = 60000;
  th_cfg.send_timeout_ms = 30000;
  th_cfg.min_send_rate = 1024;
  th_cfg.max_connections = 10000;
  th_cfg.drain_timeout_ms = 20000;
  th_cfg.drain_idle_grace_ms = 1000;
  th_cfg.cpu_budget_ms = 1000;
  th_cfg.bundle_memory = 256; /* MiB (bundle.c turns it into bytes) */
  th_cfg.access_log = 1;
  th_cfg.lua_gc = "generational";
  th_cfg.pg_plan_cache_mode = "auto";
  th_cfg.pg_pool_size = 8;
  th_cfg.pg_pool_timeout_ms = 5000;
  th_cfg.pg_pipeline_depth = 1;
  th_cfg.pg_pipeline_cork = 1;
  th_cfg.watch = 0;
}

static int apply(const setting *s, const char *value, const char *origin) {
  char *end = NULL;
  long n;
  switch (s->type) {
  case T_STR: *(const char **)s->field = value; return 0;
  case T_CHOICE: {
    for (const char *const *c = s->choices; *c; c++)
      if (!strcmp(value, *c)) {
        *(const char **)s->field = *c;
        return 0;
      }
    char list[160] = "";
    for (const char *const *c = s->choices; *c; c++) {
      if (c != s->choices) strncat(list, c[1] ? ", " : " or ", sizeof list - strlen(list) - 1);
      strncat(list, *c, sizeof list - strlen(list) - 1);
    }
    fprintf(stderr, "todo-host: %s=%s: expected %s\n", origin, value, list);
    return -1;
  }
  case T_BOOL:
    if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "on")) {
      *(int *)s->field = 1;
    } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "off")) {
      *(int *)s->field = 0;
    } else {
      fprintf(stderr, "todo-host: %s=%s: expected on or off\n", origin, value);
      return -1;
    }
    return 0;
  case T_INT:
  case T_SIZE:
    errno = 0;
    n = strtol(value, &end, 10);
    if (errno || end == value || *end || n < s->min || n > s->max) {
      fprintf(stderr, "todo-host: %s=%s: expected a whole number from %ld to %ld\n", origin, value,
              s->min, s->max);
      return -1;
    }
    if (s->type == T_INT)
      *(int *)s->field = (int)n;
    else
      *(size_t *)s->field = (size_t)n;
    return 0;
  }
  return -1;
}

int th_config_from_env(void) {
  defaults();
  for (const setting *s = settings; s->env; s++) {
    const char *v = getenv(s->env);
    if (v && *v && apply(s, v, s->env) < 0) return -1;
  }
  return 0;
}

int th_config_flag(int argc, char **argv, int i) {
  const char *arg = argv[i];
  if (strncmp(arg, "--", 2) != 0) return 0;
  arg += 2;
  if (!strcmp(arg, "watch")) {
    th_cfg.watch = 1;
    return 1;
  }
  for (const setting *s = settings; s->env; s++) {
    size_t len = strlen(s->flag);
    if (strncmp(arg, s->flag, len) != 0) continue;
    if (arg[len] == '=') return apply(s, arg + len + 1, argv[i]) < 0 ? -1 : 1;
    if (arg[len] == '\0') {
      if (i + 1 >= argc) {
        fprintf(stderr, "todo-host: --%s needs a value\n", s->flag);
        return -1;
      }
      return apply(s, argv[i + 1], argv[i]) < 0 ? -1 : 2;
    }
  }
  return 0;
}

/* ---- secrets at start-up ------------------------------------------------ */

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v && *v ? v : fallback;
}

/* DATABASE_URL_SECRET: the URL from the Dapr secrets API, once, before any
 * worker exists (dapr/README.md, "Secrets"). */
static int database_url_from_dapr(const char *secret) {
  const char *store = env_or("DAPR_SECRETSTORE", "secretstore");
  const char *key = env_or("DATABASE_URL_SECRET_KEY", NULL);
  const char *wait = env_or("DAPR_WAIT_SECONDS", "30");
  char *end = NULL;
  errno = 0;
  long wait_s = strtol(wait, &end, 10);
  if (errno || end == wait || *end || wait_s < 0 || wait_s > 3600) {
    fprintf(stderr, "todo-host: DAPR_WAIT_SECONDS=%s: expected a whole number from 0 to 3600\n",
            wait);
    return -1;
  }
  if (th_cfg.database_url && *th_cfg.database_url) {
    fprintf(stderr, "todo-host: DATABASE_URL and DATABASE_URL_SECRET are both set: set one "
                    "(the URL itself, or the name of the secret that holds it)\n");
    return -1;
  }
  char base[300], err[512];
  snprintf(base, sizeof base, "http://%s:%s", env_or("DAPR_HOST", "127.0.0.1"),
           env_or("DAPR_HTTP_PORT", "3500"));
  th_dapr_endpoint ep = {base, env_or("DAPR_API_TOKEN", NULL)};
  if (th_dapr_wait_outbound(&ep, (int)wait_s * 1000, err, sizeof err) < 0) {
    fprintf(stderr,
            "todo-host: DATABASE_URL_SECRET=%s: the Dapr sidecar at %s was not ready "
            "(GET /v1.0/healthz/outbound) within %ld s: %s\n",
            secret, base, wait_s, err);
    return -1;
  }
  char *url = th_dapr_secret_get(&ep, store, secret, key, err, sizeof err);
  if (!url) {
    fprintf(stderr, "todo-host: DATABASE_URL_SECRET: %s\n", err);
    return -1;
  }
  th_cfg.database_url = url;
  return 0;
}

int th_config_resolve_secrets(void) {
  int dapr = !strcmp(env_or("BUS", ""), "dapr");
  const char *secret = env_or("DATABASE_URL_SECRET", NULL);
  if (secret && !dapr) {
    fprintf(stderr,
            "todo-host: DATABASE_URL_SECRET=%s needs BUS=dapr (the secret is read "
            "from the Dapr sidecar); without Dapr set DATABASE_URL\n",
            secret);
    return -1;
  }
  /* A cluster (BUS=dapr) must not sign list cursors with the public default of
   * lua/tasks/cursor.lua: anyone could forge one. AUTH_DEV_SECRET, when set, is
   * what the cursors use instead (development). */
  if (dapr && !env_or("API_CURSOR_SECRET", NULL) && !env_or("AUTH_DEV_SECRET", NULL)) {
    fprintf(stderr, "todo-host: BUS=dapr needs API_CURSOR_SECRET (the key list cursors are "
                    "signed with; without it they would be signed with a public default). "
                    "Give it from a Secret (the chart's apiCursor.secretName)\n");
    return -1;
  }
  if (secret) return database_url_from_dapr(secret);
  return 0;
}

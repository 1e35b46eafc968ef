/* config.h: the host's settings, read once at start-up from the environment and
 * then from command-line flags (flags win). Values are validated here so a bad
 * setting stops start-up with one clear line. */
#ifndef TH_CONFIG_H
#define TH_CONFIG_H

#include <stddef.h>

typedef struct th_config {
  int port;
  const char *host;               /* listen address, default 0.0.0.0 */
  int workers;                    /* worker processes; default = CPU count */
  const char *database_url;       /* may be NULL */
  const char *log_level;          /* debug|info|warn|error */
  size_t max_body;                /* bytes; 413 above */
  size_t max_header;              /* bytes; 431 above */
  size_t max_pending_output;      /* unsent bytes per connection before it stops being read */
  int header_timeout_ms;          /* 408 when headers are not complete in time */
  int body_timeout_ms;            /* 408 when the body stalls */
  int keepalive_timeout_ms;       /* idle keep-alive connections are closed */
  int send_timeout_ms;            /* the window over which unsent answers must move */
  size_t min_send_rate;           /* bytes/s a client with answers waiting must take; else closed */
  int max_connections;            /* per worker; 503 above */
  int drain_timeout_ms;           /* graceful shutdown bound */
  int drain_idle_grace_ms;        /* draining: idle keep-alive connections may send one more */
  int cpu_budget_ms;              /* per unit of work; 500 above */
  size_t bundle_memory;           /* MiB per bundle state (BUNDLE_MEMORY_MB) */
  int access_log;                 /* 1: one JSON line per request */
  const char *lua_gc;             /* "generational" (default) or "incremental" */
  const char *pg_plan_cache_mode; /* PostgreSQL plan_cache_mode of every pool connection */
  int pg_pool_size;               /* pool connections per worker */
  int pg_pool_timeout_ms;         /* how long acquire() and queries wait for a connection */
  int pg_pipeline_depth;          /* queries in flight per shared connection */
  int pg_pipeline_cork;           /* several queued queries go out as one TCP segment */
  int watch;                      /* reload bundles when their files change */
  const char *trusted_proxies;    /* peers whose X-Forwarded-For is believed (http/client_addr.c) */
} th_config;

extern th_config th_cfg;

/* Fill th_cfg from the environment. Returns 0, or -1 after printing one line
 * naming the bad variable. */
int th_config_from_env(void);

/* Apply one `--name=value` or `--name value` flag; returns the number of argv
 * entries consumed (1 or 2), 0 when the flag is not a setting, -1 on a bad value. */
int th_config_flag(int argc, char **argv, int i);

/* Start-up checks of `run` that need the whole environment: with BUS=dapr,
 * API_CURSOR_SECRET must be set, and DATABASE_URL_SECRET (when set) names the
 * secret of the Dapr secret store (DAPR_SECRETSTORE) that holds the database URL:
 * it is read now, after waiting up to DAPR_WAIT_SECONDS (30) for the sidecar.
 * Returns 0, or -1 after printing one line (never a secret's value). */
int th_config_resolve_secrets(void);

#endif

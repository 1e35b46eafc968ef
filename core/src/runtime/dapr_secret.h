/* dapr_secret.h: reading one secret from the Dapr sidecar at start-up, before any
 * loop or Lua state exists (the database URL: the pool needs it before Lua runs).
 * Blocking libcurl calls; used once by the master before it forks workers. Run-time
 * secrets of the bundles go through lua/secrets.lua instead. */
#ifndef TH_DAPR_SECRET_H
#define TH_DAPR_SECRET_H

#include <stddef.h>

typedef struct th_dapr_endpoint {
  const char *base;  /* "http://127.0.0.1:3500" */
  const char *token; /* sent as dapr-api-token; may be NULL */
} th_dapr_endpoint;

/* Poll GET <base>/v1.0/healthz/outbound until it answers 204 or timeout_ms has
 * passed. (Not /v1.0/healthz: that one waits for the app, which waits for us.)
 * Returns 0, or -1 with the last failure in err. */
int th_dapr_wait_outbound(const th_dapr_endpoint *ep, int timeout_ms, char *err, size_t errlen);

/* GET <base>/v1.0/secrets/<store>/<name> and answer the value of `key`; without a
 * key, the key named like the secret, else the secret's only key. Returns a
 * malloc'd string, or NULL with a message in err that names the secret, the store
 * and the HTTP status, never a value. */
char *th_dapr_secret_get(const th_dapr_endpoint *ep, const char *store, const char *name,
                         const char *key, char *err, size_t errlen);

#endif

/* dapr_secret.c: one secret from the Dapr sidecar's secrets API at start-up (see
 * dapr_secret.h). Blocking libcurl easy calls and yajl's tree parser; nothing of
 * the loop or of Lua. The value answered is the caller's to free; this file never
 * prints a value, only names (secret, store, keys) and HTTP statuses. */
#include "runtime/dapr_secret.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "base/buf.h"

#define MAX_ANSWER (64 * 1024) /* a secret's JSON; more is not a secret answer */
#define CALL_TIMEOUT_MS 2000L

typedef struct answer {
  long status;
  th_buf body;
  int too_big;
} answer;

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  answer *a = arg;
  if (a->body.len + size * n > MAX_ANSWER) {
    a->too_big = 1;
    return 0; /* aborts the transfer */
  }
  th_buf_add(&a->body, data, size * n);
  return size * n;
}

/* One GET; 0 with the status and body in *a, or -1 with the transport error. */
static int get(const th_dapr_endpoint *ep, const char *path, answer *a, char *err, size_t errlen) {
  CURL *c = curl_easy_init();
  if (!c) abort();
  th_buf url = {0};
  th_buf_printf(&url, "%s%s", ep->base, path);
  struct curl_slist *headers = NULL;
  if (ep->token && *ep->token) {
    th_buf h = {0};
    th_buf_printf(&h, "dapr-api-token: %s", ep->token);
    headers = curl_slist_append(headers, h.data);
    th_buf_free(&h);
    if (!headers) abort();
  }
  char curl_err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.data);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  th_buf_free(&url);
  if (a->too_big) {
    say(err, errlen, "the answer is larger than %d bytes", MAX_ANSWER);
    return -1;
  }
  if (rc != CURLE_OK) {
    say(err, errlen, "%s", *curl_err ? curl_err : curl_easy_strerror(rc));
    return -1;
  }
  return 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int th_dapr_wait_outbound(const th_dapr_endpoint *ep, int timeout_ms, char *err, size_t errlen) {
  long deadline = now_ms() + timeout_ms;
  say(err, errlen, "no answer yet");
  for (;;) {
    answer a = {0};
    if (get(ep, "/v1.0/healthz/outbound", &a, err, errlen) == 0) {
      if (a.status == 204 || a.status == 200) {
        th_buf_free(&a.body);
        return 0;
      }
      say(err, errlen, "HTTP %ld", a.status);
    }
    th_buf_free(&a.body);
    if (now_ms() >= deadline) return -1;
    struct timespec pause = {0, 250 * 1000000L};
    nanosleep(&pause, NULL);
  }
}

/* The "errorCode" of daprd's error body, or "" (the message may quote names,
 * never values, but the code is all an operator needs beside the status). */
static const char *error_code(yajl_val doc) {
  const char *path[] = {"errorCode", NULL};
  yajl_val v = doc ? yajl_tree_get(doc, path, yajl_t_string) : NULL;
  return v ? YAJL_GET_STRING(v) : "";
}

static char *pick(yajl_val doc, const char *name, const char *key, char *err, size_t errlen,
                  const char *where) {
  if (!YAJL_IS_OBJECT(doc)) {
    say(err, errlen, "%s: the answer is not a JSON object", where);
    return NULL;
  }
  size_t n = doc->u.object.len;
  yajl_val found = NULL;
  const char *want = key ? key : name;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(doc->u.object.keys[i], want)) found = doc->u.object.values[i];
  if (!found && !key && n == 1) found = doc->u.object.values[0];
  if (!found) {
    th_buf keys = {0};
    for (size_t i = 0; i < n; i++)
      th_buf_printf(&keys, "%s%s", i ? ", " : "", doc->u.object.keys[i]);
    say(err, errlen, "%s has no key '%s' (its keys: %s)", where, want, n ? keys.data : "none");
    th_buf_free(&keys);
    return NULL;
  }
  const char *str = YAJL_GET_STRING(found);
  if (!str || !*str) {
    say(err, errlen, "%s: key '%s' is empty or not a string", where, want);
    return NULL;
  }
  char *v = strdup(str);
  if (!v) abort();
  return v;
}

char *th_dapr_secret_get(const th_dapr_endpoint *ep, const char *store, const char *name,
                         const char *key, char *err, size_t errlen) {
  char where[256];
  snprintf(where, sizeof where, "secret '%s' of store '%s'", name, store);
  CURL *esc = curl_easy_init();
  if (!esc) abort();
  char *s = curl_easy_escape(esc, store, 0), *nm = curl_easy_escape(esc, name, 0);
  if (!s || !nm) abort();
  th_buf path = {0};
  th_buf_printf(&path, "/v1.0/secrets/%s/%s", s, nm);
  curl_free(s);
  curl_free(nm);
  curl_easy_cleanup(esc);

  answer a = {0};
  char why[256];
  int rc = get(ep, path.data, &a, why, sizeof why);
  th_buf_free(&path);
  if (rc < 0) {
    say(err, errlen, "%s: the sidecar at %s did not answer: %s", where, ep->base, why);
    th_buf_free(&a.body);
    return NULL;
  }
  yajl_val doc = a.body.len ? yajl_tree_parse(a.body.data, NULL, 0) : NULL;
  char *value = NULL;
  if (a.status == 204 || (a.status == 200 && !a.body.len))
    say(err, errlen, "%s: no such secret (HTTP %ld)", where, a.status);
  else if (a.status != 200)
    say(err, errlen, "%s: HTTP %ld %s", where, a.status, error_code(doc));
  else
    value = pick(doc, name, key, err, errlen, where);
  if (doc) yajl_tree_free(doc);
  /* the body held the value: wipe it before giving the memory back */
  if (a.body.data) memset(a.body.data, 0, a.body.len);
  th_buf_free(&a.body);
  return value;
}

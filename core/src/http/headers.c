/* http/headers.c: the security headers every response carries (docs/api.md,
 * "Headers"), each unless the handler set that header itself:
 *   X-Content-Type-Options: nosniff   no content sniffing of JSON or text
 *   Cache-Control: no-store           API answers are per user: never cached
 *   X-Frame-Options: DENY             no framing (clickjacking)
 *   Referrer-Policy: no-referrer      no URLs with ids leak to other sites */
#include <string.h>
#include <strings.h>

#include "http/http.h"

static const struct {
  const char *name;
  const char *line;
} defaults[] = {
    {"x-content-type-options", "X-Content-Type-Options: nosniff\r\n"},
    {"cache-control", "Cache-Control: no-store\r\n"},
    {"x-frame-options", "X-Frame-Options: DENY\r\n"},
    {"referrer-policy", "Referrer-Policy: no-referrer\r\n"},
};
#define N_DEFAULTS (sizeof defaults / sizeof defaults[0])

void th__http_add_security_headers(th_buf *out, const th_buf *given) {
  int present[N_DEFAULTS] = {0};
  const char *p = given->data, *end = given->data + given->len;
  while (p && p < end) { /* "Name: value\r\n" lines */
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (colon && (!eol || colon < eol))
      for (size_t i = 0; i < N_DEFAULTS; i++)
        if ((size_t)(colon - p) == strlen(defaults[i].name) &&
            !strncasecmp(p, defaults[i].name, (size_t)(colon - p)))
          present[i] = 1;
    p = eol ? eol + 1 : NULL;
  }
  for (size_t i = 0; i < N_DEFAULTS; i++)
    if (!present[i]) th_buf_adds(out, defaults[i].line);
}

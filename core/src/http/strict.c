/* http/strict.c: the RFC 9112 checks the host adds where Debian's llhttp 8.1 is
 * more permissive than the RFC (its lenient flags stay off): header-name syntax
 * on every field, field values free of control characters, exactly one valid
 * Host, transfer codings (only chunked is implemented: anything else is 501),
 * the HTTP version, Expect, and absolute-form request targets. Pure functions
 * over a parsed th_request; server.c calls them and answers the status. */
#include <string.h>
#include <strings.h>

#include "http/http.h"

/* tchar of RFC 9110 5.6.2. */
static int is_tchar(unsigned char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return 1;
  return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int valid_name(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)s[i])) return 0;
  return 1;
}

/* field-value: visible characters, obs-text, SP and HTAB; no CR, LF, NUL or
 * other controls (RFC 9110 5.5; a folded line would leave a CR or LF here). */
static int valid_value(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
  }
  return 1;
}

/* uri-host [ ":" port ]: reg-name / IPv4 / IP-literal characters (RFC 3986). */
static int valid_host(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) continue;
    if (!strchr("-._~%!$&'()*+,;=:[]", ch)) return 0;
  }
  return 1;
}

/* Every transfer coding of every Transfer-Encoding field, in order: only one
 * "chunked", last, is accepted. 0, 400 or 501. */
static int check_codings(const th_request *r, const char **msg) {
  int chunked = 0, other = 0, last_chunked = 0;
  for (int i = 0; i < r->nheaders; i++) {
    const th_header *h = &r->headers[i];
    if (h->name_len != 17 || memcmp(r->hbuf.data + h->name_off, "transfer-encoding", 17)) continue;
    const char *v = r->hbuf.data + h->value_off, *end = v + h->value_len;
    while (v < end) {
      while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
        v++;
      const char *start = v;
      while (v < end && *v != ',')
        v++;
      const char *stop = v;
      while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;
      if (stop == start) continue;
      if (stop - start == 7 && !strncasecmp(start, "chunked", 7)) {
        chunked++;
        last_chunked = 1;
      } else {
        other++;
        last_chunked = 0;
      }
    }
  }
  if (other) {
    *msg = "only the chunked transfer coding is implemented";
    return 501;
  }
  if (chunked > 1 || (chunked && !last_chunked)) {
    *msg = "Transfer-Encoding must name chunked once, last";
    return 400;
  }
  return 0;
}

int th__http_check_head(const th_request *r, int major, int minor, int version_seen,
                        int *expect_continue, const char **msg) {
  *expect_continue = 0;
  if (!version_seen) {
    *msg = "HTTP/0.9 requests (no version) are not served";
    return 400;
  }
  if (major != 1 || minor > 1) {
    *msg = "only HTTP/1.0 and HTTP/1.1 are served";
    return 505;
  }
  int hosts = 0, te = 0;
  for (int i = 0; i < r->nheaders; i++) {
    const th_header *h = &r->headers[i];
    const char *name = r->hbuf.data + h->name_off;
    const char *value = r->hbuf.data + h->value_off;
    if (!valid_name(name, h->name_len)) {
      *msg = "a header name is empty or has characters a name cannot have";
      return 400;
    }
    if (!valid_value(value, h->value_len)) {
      *msg = "a header value has control characters (or a folded line)";
      return 400;
    }
    if (h->name_len == 4 && !memcmp(name, "host", 4)) {
      hosts++;
      if (!valid_host(value, h->value_len)) {
        *msg = "the Host header is not a valid host";
        return 400;
      }
    } else if (h->name_len == 17 && !memcmp(name, "transfer-encoding", 17)) {
      te = 1;
    } else if (h->name_len == 6 && !memcmp(name, "expect", 6)) {
      if (h->value_len == 12 && !strncasecmp(value, "100-continue", 12)) {
        *expect_continue = minor == 1;
      } else {
        *msg = "the only expectation served is 100-continue";
        return 417;
      }
    }
  }
  if (hosts > 1 || (hosts == 0 && minor == 1)) {
    *msg = hosts ? "more than one Host header" : "an HTTP/1.1 request needs a Host header";
    return 400;
  }
  if (te && minor == 0) {
    *msg = "Transfer-Encoding is not allowed in an HTTP/1.0 request";
    return 400;
  }
  return te ? check_codings(r, msg) : 0;
}

void th__http_absolute_form(th_buf *url) {
  size_t skip = 0;
  if (url->len >= 7 && !strncasecmp(url->data, "http://", 7))
    skip = 7;
  else if (url->len >= 8 && !strncasecmp(url->data, "https://", 8))
    skip = 8;
  if (!skip) return;
  const char *end = url->data + url->len;
  const char *path = url->data + skip;
  while (path < end && *path != '/' && *path != '?')
    path++;
  size_t rest = (size_t)(end - path);
  if (rest == 0 || *path == '?') {
    /* no path: the origin form's "/" (RFC 9112 3.2.1) */
    memmove(url->data + 1, path, rest);
    url->data[0] = '/';
    url->len = rest + 1;
  } else {
    memmove(url->data, path, rest);
    url->len = rest;
  }
}

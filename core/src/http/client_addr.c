/* http/client_addr.c: who a request comes from, as the Lua side sees it
 * (req.peer_address, req.client_address; the per-address rate limit of
 * lua/web/ratelimit.lua counts the latter).
 *
 * The peer address is the socket's other end. Behind a reverse proxy or a load
 * balancer that is the proxy, so the real client is in X-Forwarded-For, but any
 * client can send that header: it is believed ONLY when the peer is one of
 * TRUSTED_PROXIES (addresses or CIDR blocks), and then read from the right (the
 * hop each proxy appended) leftwards, skipping addresses that are themselves
 * trusted proxies: the first untrusted address is the client. Whatever a client
 * puts to the left of that is never used, so it cannot pick its own address. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/conn.h"

typedef struct {
  int family; /* AF_INET or AF_INET6 */
  unsigned char bytes[16];
  int bits; /* prefix length */
} cidr;

static cidr *trusted;
static int n_trusted;

/* Parse one address (IPv4, IPv6, "[IPv6]"); an IPv4-mapped IPv6 address becomes
 * its IPv4 form, so "::ffff:10.0.0.1" and "10.0.0.1" are the same client. */
static int parse_ip(const char *s, size_t n, int *family, unsigned char bytes[16]) {
  char text[INET6_ADDRSTRLEN + 2];
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
    s++;
    n -= 2;
  }
  if (n == 0 || n >= sizeof text) return -1;
  memcpy(text, s, n);
  text[n] = '\0';
  if (inet_pton(AF_INET, text, bytes) == 1) {
    *family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, text, bytes) != 1) return -1;
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!memcmp(bytes, mapped, 12)) {
    memmove(bytes, bytes + 12, 4);
    *family = AF_INET;
  } else {
    *family = AF_INET6;
  }
  return 0;
}

static int is_trusted(int family, const unsigned char *bytes) {
  for (int i = 0; i < n_trusted; i++) {
    const cidr *t = &trusted[i];
    if (t->family != family) continue;
    int full = t->bits / 8, rest = t->bits % 8;
    if (memcmp(t->bytes, bytes, (size_t)full)) continue;
    if (rest && ((t->bytes[full] ^ bytes[full]) & (0xff << (8 - rest)))) continue;
    return 1;
  }
  return 0;
}

int th_http_trusted_proxies_init(const char *list) {
  free(trusted);
  trusted = NULL;
  n_trusted = 0;
  if (!list) return 0;
  const char *p = list;
  while (*p) {
    p += strspn(p, ", \t");
    size_t n = strcspn(p, ", \t");
    if (!n) break;
    const char *slash = memchr(p, '/', n);
    size_t ip_len = slash ? (size_t)(slash - p) : n;
    cidr c = {0};
    int ok = parse_ip(p, ip_len, &c.family, c.bytes) == 0;
    int max = c.family == AF_INET ? 32 : 128;
    c.bits = max;
    if (ok && slash) {
      char digits[8];
      size_t dn = n - ip_len - 1;
      char *end;
      ok = dn > 0 && dn < sizeof digits;
      if (ok) {
        memcpy(digits, slash + 1, dn);
        digits[dn] = '\0';
        long bits = strtol(digits, &end, 10);
        ok = *end == '\0' && bits >= 0 && bits <= max;
        c.bits = (int)bits;
      }
    }
    if (!ok) {
      fprintf(stderr,
              "todo-host: TRUSTED_PROXIES: '%.*s' is not an IP address or CIDR block "
              "(e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)\n",
              (int)n, p);
      return -1;
    }
    cidr *grown = realloc(trusted, (size_t)(n_trusted + 1) * sizeof *grown);
    if (!grown) abort();
    trusted = grown;
    trusted[n_trusted++] = c;
    p += n;
  }
  return 0;
}

static void format_ip(int family, const unsigned char *bytes, char *out, size_t n) {
  if (!inet_ntop(family, bytes, out, (socklen_t)n)) snprintf(out, n, "-");
}

void th__peer_address(uv_tcp_t *tcp, char *out, size_t n) {
  struct sockaddr_storage sa;
  int len = sizeof sa;
  unsigned char bytes[16];
  char text[INET6_ADDRSTRLEN];
  int family;
  snprintf(out, n, "-");
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &len) < 0) return;
  if (sa.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, text, sizeof text);
  } else if (sa.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, text, sizeof text);
  } else {
    return;
  }
  if (parse_ip(text, strlen(text), &family, bytes) == 0) format_ip(family, bytes, out, n);
}

void th__client_address(const th_request *r, char *out, size_t n) {
  int family;
  unsigned char bytes[16];
  snprintf(out, n, "%s", r->peer);
  if (!n_trusted || parse_ip(r->peer, strlen(r->peer), &family, bytes) < 0 ||
      !is_trusted(family, bytes))
    return;
  /* Every X-Forwarded-For line, in order, read as one list from its end. */
  for (int i = r->nheaders - 1; i >= 0; i--) {
    const th_header *h = &r->headers[i];
    if (h->name_len != 15 || memcmp(r->hbuf.data + h->name_off, "x-forwarded-for", 15)) continue;
    const char *v = r->hbuf.data + h->value_off;
    size_t end = h->value_len;
    while (end > 0) {
      size_t start = end;
      while (start > 0 && v[start - 1] != ',')
        start--;
      size_t a = start, b = end;
      while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
      while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
        b--;
      end = start ? start - 1 : 0;
      if (a == b) continue;
      /* Garbage from a proxy: keep the nearest address vouched for. */
      if (parse_ip(v + a, b - a, &family, bytes) < 0) return;
      format_ip(family, bytes, out, n);
      if (!is_trusted(family, bytes)) return;
    }
  }
}

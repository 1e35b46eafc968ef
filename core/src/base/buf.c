/* buf.c: the growable byte buffer and its text helpers (see buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void th_buf_add(th_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) abort();
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void th_buf_adds(th_buf *b, const char *s) { th_buf_add(b, s, strlen(s)); }

void th_buf_printf(th_buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    th_buf_add(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) abort();
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  th_buf_add(b, big, (size_t)n);
  free(big);
}

char *th_decimal(char *end, unsigned long long v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

void th_buf_json_escape(th_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    th_buf_add(b, s + start, i - start);
    switch (c) {
    case '"': th_buf_add(b, "\\\"", 2); break;
    case '\\': th_buf_add(b, "\\\\", 2); break;
    case '\n': th_buf_add(b, "\\n", 2); break;
    case '\t': th_buf_add(b, "\\t", 2); break;
    case '\r': th_buf_add(b, "\\r", 2); break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      th_buf_add(b, u, 6);
    }
    }
    start = i + 1;
  }
  th_buf_add(b, s + start, n - start);
}

void th_buf_free(th_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

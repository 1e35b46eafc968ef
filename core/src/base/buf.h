/* buf.h: the growable byte buffer the core builds responses, log lines and JSON
 * in, and the two text helpers that write into it without printf (decimal
 * digits, JSON string escaping). A leaf: no libuv, no Lua. The buffer owns its
 * bytes; th_buf_free gives them back. */
#ifndef TH_BUF_H
#define TH_BUF_H

#include <stddef.h>

typedef struct th_buf {
  char *data;
  size_t len, cap;
} th_buf;

/* Append n bytes; data stays NUL-terminated. Allocation failure aborts. */
void th_buf_add(th_buf *b, const char *s, size_t n);
void th_buf_adds(th_buf *b, const char *s);
void th_buf_printf(th_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string body (without quotes), escaping what JSON requires. */
void th_buf_json_escape(th_buf *b, const char *s, size_t n);
/* The decimal digits of v written backwards so that they end at `end` (at most 20
 * bytes before it); returns where they start. No terminator, no printf. */
char *th_decimal(char *end, unsigned long long v);
void th_buf_free(th_buf *b);

#endif

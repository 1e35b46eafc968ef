/* log.c: JSON-lines logging (see log.h). Owns one process-wide output buffer and
 * the uv_prepare handle that flushes it; th_buf is the growable byte buffer the
 * rest of the core uses to build responses and lines. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static th_buf out;
static int min_level = 1;
static uv_prepare_t flusher;
static int flusher_active;

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

int th_log_level_num(const char *level) {
  if (!strcmp(level, "debug")) return 0;
  if (!strcmp(level, "info")) return 1;
  if (!strcmp(level, "warn")) return 2;
  return 3;
}

void th_log_set_level(const char *level) { min_level = th_log_level_num(level); }
int th_log_enabled(int level) { return level >= min_level; }

th_buf *th_log_begin(const char *level, const char *msg, size_t msg_len, const char *request_id) {
  struct timeval tv;
  struct tm tm;
  char ts[64];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(tv.tv_usec / 1000));
  th_buf_adds(&out, "{\"time\":\"");
  th_buf_adds(&out, ts);
  th_buf_adds(&out, "\",\"level\":\"");
  th_buf_adds(&out, level);
  th_buf_adds(&out, "\",\"pid\":");
  th_buf_printf(&out, "%d", (int)getpid());
  th_buf_adds(&out, ",\"msg\":\"");
  th_buf_json_escape(&out, msg, msg_len);
  th_buf_add(&out, "\"", 1);
  if (request_id && *request_id) {
    th_buf_adds(&out, ",\"request_id\":\"");
    th_buf_json_escape(&out, request_id, strlen(request_id));
    th_buf_add(&out, "\"", 1);
  }
  return &out;
}

void th_log_end(int level) {
  th_buf_add(&out, "}\n", 2);
  if (level >= 2 || !flusher_active || out.len > 32768) th_log_flush();
}

/* Writes whole lines in chunks of at most PIPE_BUF bytes so that lines from
 * several worker processes sharing one pipe never interleave. */
void th_log_flush(void) {
  size_t off = 0;
  while (off < out.len) {
    size_t chunk = out.len - off;
    if (chunk > 4096) {
      size_t cut = off + 4096;
      while (cut > off && out.data[cut - 1] != '\n')
        cut--;
      chunk = cut > off ? cut - off : 4096;
    }
    ssize_t w = write(STDOUT_FILENO, out.data + off, chunk);
    if (w <= 0) break;
    off += (size_t)w;
  }
  out.len = 0;
}

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  if (out.len) th_log_flush();
}

void th_log_attach_loop(void) {
  if (flusher_active) return;
  uv_prepare_init(th_loop(), &flusher);
  uv_prepare_start(&flusher, on_prepare);
  uv_unref((uv_handle_t *)&flusher);
  flusher_active = 1;
}

void th_log_detach_loop(void) {
  if (!flusher_active) return;
  th_log_flush();
  uv_close((uv_handle_t *)&flusher, NULL);
  flusher_active = 0;
}

void th_log(th_ctx *ctx, const char *level, const char *fmt, ...) {
  int lvl = th_log_level_num(level);
  if (!th_log_enabled(lvl)) return;
  char small[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof small) n = sizeof small - 1;
  th_log_begin(level, small, (size_t)n, ctx ? ctx->request_id : NULL);
  th_log_end(lvl);
}

/* log.c: JSON-lines logging (see log.h). Owns one process-wide output buffer and
 * the uv_prepare handle that flushes it. */
#include "runtime/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/host.h"

static th_buf out;
static int min_level = 1;
static uv_prepare_t flusher;
static int flusher_active;

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
  th_buf *b = th_log_begin(level, small, (size_t)n, ctx ? ctx->request_id : NULL);
  if (ctx && ctx->log_fields) {
    th_buf_add(b, ",", 1);
    th_buf_adds(b, ctx->log_fields);
  }
  th_log_end(lvl);
}

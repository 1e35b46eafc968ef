/* log.h: JSON-lines logging to stdout, buffered and flushed once per loop turn
 * (and at once for warnings and errors), in chunks that never split a line. */
#ifndef TH_LOG_H
#define TH_LOG_H

#include <stddef.h>

typedef struct th_buf {
  char *data;
  size_t len, cap;
} th_buf;

void th_buf_add(th_buf *b, const char *s, size_t n);
void th_buf_adds(th_buf *b, const char *s);
void th_buf_printf(th_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string body (without quotes), escaping what JSON requires. */
void th_buf_json_escape(th_buf *b, const char *s, size_t n);
/* The decimal digits of v written backwards so that they end at `end` (at most 20
 * bytes before it); returns where they start. No terminator, no printf. */
char *th_decimal(char *end, unsigned long long v);
void th_buf_free(th_buf *b);

/* 0 debug, 1 info, 2 warn, 3 error */
int th_log_level_num(const char *level);
void th_log_set_level(const char *level);
int th_log_enabled(int level);

/* Start a log line: {"time":...,"level":...,"msg":... ; the caller may append
 * more ,"key":value members and must finish with th_log_end. */
th_buf *th_log_begin(const char *level, const char *msg, size_t msg_len, const char *request_id);
void th_log_end(int level);
void th_log_flush(void);
/* Flush from the loop: installs a uv_prepare so buffered lines leave every turn. */
void th_log_attach_loop(void);
void th_log_detach_loop(void);

#endif

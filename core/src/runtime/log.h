/* log.h: JSON-lines logging to stdout, buffered and flushed once per loop turn
 * (and at once for warnings and errors), in chunks that never split a line. */
#ifndef TH_LOG_H
#define TH_LOG_H

#include <stddef.h>

#include "base/buf.h"

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

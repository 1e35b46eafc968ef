/* http/respond.c: what the server sends. The head of every response (status
 * line, Date, X-Request-Id, Content-Length, the security headers, Connection),
 * request ids (the client's when it is a safe token, else generated), writing
 * (uv_try_write first; past MAX_PENDING_OUTPUT_BYTES of unsent answers the
 * connection is neither read nor parsed until it drains: backpressure), the
 * access log and metrics of each response, and the server's own errors in the
 * one JSON error shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/conn.h"
#include "runtime/config.h"
#include "runtime/metrics.h"

typedef struct write_req {
  uv_write_t req;
  th_conn *conn;
  int close_after;
  size_t len;
  char data[];
} write_req;

static char date_header[64];
static time_t date_time;
static uint64_t rid_prefix;
static uint32_t rid_counter;
/* The series of unmatched requests. */
static th_metrics_route *m_unmatched;

void th__http_respond_init(void) {
  m_unmatched = th_metrics_route_get("unmatched");
  uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
  rid_prefix = seed * 0x9E3779B97F4A7C15ull;
}

static const char *status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 417: return "Expectation Failed";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Status";
  }
}

static const char *http_date(void) {
  time_t now = (time_t)(uv_now(th_loop()) / 1000);
  if (now != date_time) {
    time_t wall = time(NULL);
    struct tm tm;
    gmtime_r(&wall, &tm);
    strftime(date_header, sizeof date_header, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    date_time = now;
  }
  return date_header;
}

static int valid_request_id(const char *s, size_t n) {
  if (n == 0 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == ':'))
      return 0;
  }
  return 1;
}

void th__http_assign_request_id(th_request *r) {
  size_t n;
  const char *given = th_request_header(r, "x-request-id", &n);
  if (given && valid_request_id(given, n)) {
    memcpy(r->request_id, given, n);
    r->request_id[n] = '\0';
    return;
  }
  /* "%016llx%08x" of prefix and counter, without printf on every request. */
  static const char hex[] = "0123456789abcdef";
  uint64_t p = rid_prefix;
  uint32_t count = ++rid_counter;
  for (int i = 15; i >= 0; i--, p >>= 4)
    r->request_id[i] = hex[p & 15];
  for (int i = 23; i >= 16; i--, count >>= 4)
    r->request_id[i] = hex[count & 15];
  r->request_id[24] = '\0';
}

/* ---- writing ----------------------------------------------------------- */

/* Unsent response bytes of c over th_cfg.max_pending_output: the connection is
 * neither read nor parsed until the client takes its answers (backpressure). */
int th__conn_output_blocked(th_conn *c) {
  return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->pend.len >
         th_cfg.max_pending_output;
}

static void on_written(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  th_conn *c = wr->conn;
  int close = status < 0 || wr->close_after;
  free(wr);
  if (close) {
    th__conn_close(c);
    return;
  }
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) c->send_window = 0;
  /* Everything sent to a connection waiting for its next request: idle from now. */
  if (c->phase == C_IDLE && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    th__conn_idle(c);
    if (c->phase == C_CLOSING) return;
  }
  /* Drained below the bound: go on with what is buffered, then read again. */
  if (c->phase != C_CLOSING && c->phase != C_HANDLING && !c->parsing && !th__conn_output_blocked(c))
    th__conn_continue(c);
}

/* Queue bytes; uv_try_write first so that the common small response needs no
 * copy and no allocation. */
static void write_now(th_conn *c, const char *data, size_t len, int close_after) {
  if (c->phase == C_CLOSING) return;
  c->out_total += len;
  int n = 0;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      th__conn_close(c);
      return;
    }
    if (n < 0) n = 0;
  }
  if ((size_t)n == len) {
    if (close_after) th__conn_close(c);
    return;
  }
  write_req *wr = malloc(sizeof *wr + len - (size_t)n);
  if (!wr) abort();
  wr->conn = c;
  wr->close_after = close_after;
  wr->len = len - (size_t)n;
  memcpy(wr->data, data + n, wr->len);
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
  if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
    free(wr);
    th__conn_close(c);
  }
}

/* The answers of one read's pipelined requests went out one write each: a client
 * pipelining /healthz made the server spend a system call per 250 bytes (measured in
 * docs/reliability.md, "Slow clients"). While parsing, answers are gathered (up to
 * PEND_MAX) and written when the parser stops. */
#define PEND_MAX 65536

void th__conn_write(th_conn *c, const char *data, size_t len, int close_after) {
  if (c->phase == C_CLOSING) return;
  if (c->parsing && !close_after && c->pend.len + len <= PEND_MAX) {
    th_buf_add(&c->pend, data, len);
    return;
  }
  th__conn_flush(c);
  write_now(c, data, len, close_after);
}

void th__conn_flush(th_conn *c) {
  size_t n = c->pend.len;
  if (!n || c->phase == C_CLOSING) return;
  c->pend.len = 0;
  write_now(c, c->pend.data, n, 0); /* copies what the socket does not take at once */
  if (c->phase != C_CLOSING && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0) {
    /* as th_conn_respond does for an answer left queued */
    th__conn_send_window(c);
    if (c->phase == C_IDLE) th__conn_set_timer(c, th_cfg.send_timeout_ms);
  }
}

static void access_log(th_conn *c, const th_response *res, size_t bytes) {
  if (!th_cfg.access_log || !th_log_enabled(1)) return;
  th_request *r = &c->req;
  double ms = (double)(uv_hrtime() - r->start_ns) / 1e6;
  th_buf *b = th_log_begin("info", "request", 7, r->request_id);
  th_buf_adds(b, ",\"method\":\"");
  th_buf_adds(b, r->method ? r->method : "-");
  th_buf_adds(b, "\",\"path\":\"");
  th_buf_json_escape(b, r->url.data ? r->url.data : "", r->path_len);
  th_buf_printf(b, "\",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%zu", res->status, ms, bytes);
  if (res->cpu_ns) th_buf_printf(b, ",\"cpu_ms\":%.3f", (double)res->cpu_ns / 1e6);
  if (res->route) {
    th_buf_adds(b, ",\"route\":\"");
    th_buf_json_escape(b, res->route, strlen(res->route));
    th_buf_add(b, "\"", 1);
  }
  th_log_end(1);
}

void th_conn_respond(th_conn *c, th_response *res) {
  th_request *r = &c->req;
  int close_after = !r->keep_alive || th_server_draining() || c->error_status;
  th_buf *o = &c->out;
  o->len = 0;
  if (!r->request_id[0]) th__http_assign_request_id(r);
  /* Built piece by piece: this runs once per response, and printf showed in profiles. */
  char digits[20], *d;
  th_buf_adds(o, "HTTP/1.1 ");
  d = th_decimal(digits + 20, (unsigned long long)res->status);
  th_buf_add(o, d, (size_t)(digits + 20 - d));
  th_buf_add(o, " ", 1);
  th_buf_adds(o, status_text(res->status));
  th_buf_adds(o, "\r\nDate: ");
  th_buf_adds(o, http_date());
  th_buf_adds(o, "\r\nX-Request-Id: ");
  th_buf_adds(o, r->request_id);
  th_buf_add(o, "\r\n", 2);
  if (res->status != 204 && res->status != 304) {
    th_buf_adds(o, "Content-Length: ");
    d = th_decimal(digits + 20, res->body_len);
    th_buf_add(o, d, (size_t)(digits + 20 - d));
    th_buf_add(o, "\r\n", 2);
  }
  if (res->headers.len) th_buf_add(o, res->headers.data, res->headers.len);
  th__http_add_security_headers(o, &res->headers);
  if (close_after)
    th_buf_adds(o, "Connection: close\r\n");
  else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
    th_buf_adds(o, "Connection: keep-alive\r\n"); /* HTTP/1.0 closes unless told */
  th_buf_add(o, "\r\n", 2);
  size_t head_len = o->len;
  if (!r->head && res->body_len && res->status != 204 && res->status != 304)
    th_buf_add(o, res->body, res->body_len);
  th_metrics_request(res->metrics ? res->metrics : m_unmatched, r->method ? r->method_id : -1,
                     r->method ? r->method : "-", res->status, uv_hrtime() - r->start_ns);
  access_log(c, res, o->len - head_len);
  th__conn_write(c, o->data, o->len, close_after);
  /* Answers the kernel did not take yet: the client has SEND_TIMEOUT_MS to make them
   * move (server.c, on_timeout); once they are all sent it is idle (on_written). */
  int queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0;
  if (queued) th__conn_send_window(c);
  if (close_after) {
    if (queued) th__conn_set_timer(c, th_cfg.send_timeout_ms);
    c->phase = C_CLOSING;
    return;
  }
  c->phase = C_IDLE;
  th__conn_set_timer(c, queued ? th_cfg.send_timeout_ms : th_cfg.keepalive_timeout_ms);
  /* Answered from inside th__conn_continue (a built-in endpoint, an error, a handler
   * that did not wait): its loop goes on with the next pipelined request.
   * Calling it again here would recurse once per pipelined request. */
  if (!c->parsing) th__conn_continue(c);
}

void th_conn_error(th_conn *c, int status, const char *code, const char *message) {
  th__conn_error_with(c, status, code, message, NULL);
}

void th__conn_error_allow(th_conn *c, const char *allow) {
  char hdr[128];
  snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
  th__conn_error_with(c, 405, "method_not_allowed", "this path does not accept that method", hdr);
}

void th__conn_error_with(th_conn *c, int status, const char *code, const char *message,
                         const char *extra_headers) {
  th_response res = {0};
  th_buf body = {0};
  res.status = status;
  th_buf_adds(&body, "{\"error\":{\"code\":\"");
  th_buf_adds(&body, code);
  th_buf_adds(&body, "\",\"message\":\"");
  th_buf_json_escape(&body, message, strlen(message));
  th_buf_adds(&body, "\",\"request_id\":\"");
  if (!c->req.request_id[0]) th__http_assign_request_id(&c->req);
  th_buf_adds(&body, c->req.request_id);
  th_buf_adds(&body, "\"}}");
  th_buf_adds(&res.headers, "Content-Type: application/json\r\n");
  if (extra_headers) th_buf_adds(&res.headers, extra_headers);
  res.body = body.data;
  res.body_len = body.len;
  th_conn_respond(c, &res);
  th_buf_free(&body);
  th_buf_free(&res.headers);
}

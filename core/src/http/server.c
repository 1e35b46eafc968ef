/* http/server.c: the HTTP/1.1 server on libuv + llhttp.
 *
 * Owns the listening socket and every connection (th_conn). A connection parses
 * with llhttp and handles one request at a time: the parser pauses after each
 * message, the request is dispatched, and parsing resumes after the response is
 * queued, so pipelined responses leave in order. Past MAX_PENDING_OUTPUT_BYTES
 * of unsent answers a connection is neither read nor parsed until it drains
 * (backpressure). Limits answer with their own
 * status: 431 (headers), 413 (body), 400 (malformed), 408 (slow headers or
 * body), 503 (connection cap). A th_conn is freed in the close callback of its
 * last handle, and never while a handler still runs for it (refs).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/list.h"
#include "http/http.h"
#include "runtime/config.h"
#include "runtime/metrics.h"

typedef enum { C_IDLE, C_HEAD, C_BODY, C_HANDLING, C_CLOSING } conn_phase;

struct th_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  llhttp_t parser;
  th_buf in; /* received, not yet parsed bytes start at in_off */
  size_t in_off;
  th_request req;
  th_buf out; /* response being written */
  conn_phase phase;
  int refs; /* tcp + timer + a running handler */
  int reading;
  int error_status;           /* set by a callback that stops the parser */
  int last_was_value;         /* header callbacks: value seen since the last field */
  int parsing;                /* inside conn_continue */
  int version_seen;           /* the request line named a version (else HTTP/0.9) */
  int value_done;             /* header callbacks: the last value is complete */
  const char *error_msg;      /* why error_status, when a check of strict.c said */
  const char *exec_start;     /* what the running llhttp_execute was given */
  const char *value_span_end; /* end of the current header value's last span */
  int last_send_queue;        /* SIOCOUTQ when its timer last ran while output was blocked */
  size_t header_bytes;
  size_t chunk_ext_bytes; /* chunk extensions count against MAX_BODY_BYTES */
  th_list link;           /* in `conns`: live connections, for draining */
};

typedef struct write_req {
  uv_write_t req;
  th_conn *conn;
  int close_after;
  size_t len;
  char data[];
} write_req;

static uv_tcp_t listener;
static int listening;
static th_generation *current_gen;
static th_router *current_router;
static int (*ready_probe)(void);
static th_list conns = TH_LIST_INIT(conns);
static int n_conns;
static int draining;
static void (*drained_cb)(void);
static llhttp_settings_t settings;
static char date_header[64];
static time_t date_time;
static uint64_t rid_prefix;
static uint32_t rid_counter;
/* The series of the built-in endpoints and of unmatched requests. */
static th_metrics_route *m_healthz, *m_readyz, *m_metrics, *m_unmatched;

static void conn_close(th_conn *c);
static void conn_continue(th_conn *c);
static void conn_start_reading(th_conn *c);

/* ---- small helpers ----------------------------------------------------- */

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

static void assign_request_id(th_request *r) {
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

const char *th_request_header(const th_request *r, const char *name, size_t *len) {
  size_t nlen = strlen(name);
  for (int i = 0; i < r->nheaders; i++) {
    const th_header *h = &r->headers[i];
    if (h->name_len == nlen && memcmp(r->hbuf.data + h->name_off, name, nlen) == 0) {
      if (len) *len = h->value_len;
      return r->hbuf.data + h->value_off;
    }
  }
  return NULL;
}

static void request_reset(th_request *r) {
  r->url.len = 0;
  r->hbuf.len = 0;
  r->nheaders = 0;
  r->body.len = 0;
  r->path_len = 0;
  r->request_id[0] = '\0';
  r->keep_alive = 1;
  r->head = 0;
}

static void set_timer(th_conn *c, int ms);
static void conn_write(th_conn *c, const char *data, size_t len, int close_after);

/* ---- llhttp callbacks -------------------------------------------------- */

static int fail(th_conn *c, int status) {
  c->error_status = status;
  return -1;
}

static int count_header_bytes(th_conn *c, size_t n) {
  c->header_bytes += n;
  return c->header_bytes > th_cfg.max_header ? fail(c, 431) : 0;
}

static int on_message_begin(llhttp_t *p) {
  th_conn *c = p->data;
  request_reset(&c->req);
  c->header_bytes = 0;
  c->chunk_ext_bytes = 0;
  c->error_msg = NULL;
  c->version_seen = 0;
  c->value_done = 0;
  c->value_span_end = NULL;
  c->last_was_value = 1;
  c->req.start_ns = uv_hrtime();
  if (c->phase == C_IDLE) {
    c->phase = C_HEAD;
    set_timer(c, th_cfg.header_timeout_ms);
  }
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  if (count_header_bytes(c, n)) return -1;
  th_buf_add(&c->req.url, at, n);
  return 0;
}

static int on_version_complete(llhttp_t *p) {
  ((th_conn *)p->data)->version_seen = 1;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  if (count_header_bytes(c, n + 4)) return -1;
  c->value_done = 0;
  c->value_span_end = NULL;
  if (c->last_was_value) {
    if (r->nheaders == r->cap_headers) {
      r->cap_headers = r->cap_headers ? r->cap_headers * 2 : 16;
      r->headers = realloc(r->headers, sizeof(th_header) * (size_t)r->cap_headers);
      if (!r->headers) abort();
    }
    th_header *h = &r->headers[r->nheaders++];
    h->name_off = r->hbuf.len;
    h->name_len = 0;
    h->value_off = 0;
    h->value_len = 0;
    c->last_was_value = 0;
  }
  th_header *h = &r->headers[r->nheaders - 1];
  size_t start = r->hbuf.len;
  th_buf_add(&r->hbuf, at, n);
  for (size_t i = start; i < r->hbuf.len; i++) {
    char ch = r->hbuf.data[i];
    if (ch >= 'A' && ch <= 'Z') r->hbuf.data[i] = (char)(ch + 32);
  }
  h->name_len += n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  if (count_header_bytes(c, n)) return -1;
  if (r->nheaders == 0 || c->value_done) { /* a value without a name (": v") */
    c->error_msg = "a header has an empty name";
    return fail(c, 400);
  }
  th_header *h = &r->headers[r->nheaders - 1];
  /* llhttp 8.1 joins an obs-fold continuation line to the value as a second
   * span; spans of one value are otherwise contiguous, or the second starts a
   * new llhttp_execute. RFC 9112 5.2: reject the fold. */
  if (c->last_was_value && c->value_span_end && at != c->value_span_end && at != c->exec_start) {
    c->error_msg = "obsolete line folding is not accepted";
    return fail(c, 400);
  }
  c->value_span_end = at + n;
  if (!c->last_was_value) {
    th_buf_add(&r->hbuf, "", 1); /* NUL after the name */
    h->value_off = r->hbuf.len;
    c->last_was_value = 1;
  }
  th_buf_add(&r->hbuf, at, n);
  h->value_len += n;
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  th_conn *c = p->data;
  th_buf_add(&c->req.hbuf, "", 1); /* NUL after the value */
  c->value_done = 1;
  c->value_span_end = NULL;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  th_conn *c = p->data;
  th_request *r = &c->req;
  /* A field with an empty value never saw on_header_value. */
  for (int i = 0; i < r->nheaders; i++)
    if (r->headers[i].value_off == 0)
      r->headers[i].value_off = r->headers[i].name_off + r->headers[i].name_len;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > th_cfg.max_body) return fail(c, 413);
  int expect_continue = 0;
  int refuse = th__http_check_head(r, p->http_major, p->http_minor, c->version_seen,
                                   &expect_continue, &c->error_msg);
  if (refuse) return fail(c, refuse);
  th__http_absolute_form(&r->url);
  if (expect_continue && (p->content_length > 0 || (p->flags & F_CHUNKED))) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    conn_write(c, cont, sizeof cont - 1, 0);
    if (c->phase == C_CLOSING) return -1; /* the write failed: the connection is gone */
  }
  r->method = llhttp_method_name((llhttp_method_t)p->method);
  r->method_id = (int)p->method;
  r->head = p->method == HTTP_HEAD;
  const char *q = memchr(r->url.data ? r->url.data : "", '?', r->url.len);
  r->path_len = q ? (size_t)(q - r->url.data) : r->url.len;
  c->phase = C_BODY;
  set_timer(c, th_cfg.body_timeout_ms);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  if (c->req.body.len + c->chunk_ext_bytes + n > th_cfg.max_body) return fail(c, 413);
  th_buf_add(&c->req.body, at, n);
  return 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t n) {
  th_conn *c = p->data;
  (void)at;
  c->chunk_ext_bytes += n;
  return c->req.body.len + c->chunk_ext_bytes > th_cfg.max_body ? fail(c, 413) : 0;
}

static int on_message_complete(llhttp_t *p) {
  th_conn *c = p->data;
  c->req.keep_alive = llhttp_should_keep_alive(p);
  c->phase = C_HANDLING;
  set_timer(c, 0);
  return HPE_PAUSED;
}

/* ---- writing ----------------------------------------------------------- */

/* Unsent response bytes of c over th_cfg.max_pending_output: the connection is
 * neither read nor parsed until the client takes its answers (backpressure). */
static int output_blocked(th_conn *c) {
  return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > th_cfg.max_pending_output;
}

static void on_written(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  th_conn *c = wr->conn;
  int close = status < 0 || wr->close_after;
  free(wr);
  if (close) {
    conn_close(c);
    return;
  }
  /* Drained below the bound: go on with what is buffered, then read again. */
  if (c->phase != C_CLOSING && c->phase != C_HANDLING && !c->parsing && !output_blocked(c))
    conn_continue(c);
}

/* Queue bytes; uv_try_write first so that the common small response needs no
 * copy and no allocation. */
static void conn_write(th_conn *c, const char *data, size_t len, int close_after) {
  if (c->phase == C_CLOSING) return;
  int n = 0;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      conn_close(c);
      return;
    }
    if (n < 0) n = 0;
  }
  if ((size_t)n == len) {
    if (close_after) conn_close(c);
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
    conn_close(c);
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
  if (res->route) {
    th_buf_adds(b, ",\"route\":\"");
    th_buf_json_escape(b, res->route, strlen(res->route));
    th_buf_add(b, "\"", 1);
  }
  th_log_end(1);
}

void th_conn_respond(th_conn *c, th_response *res) {
  th_request *r = &c->req;
  int close_after = !r->keep_alive || draining || c->error_status;
  th_buf *o = &c->out;
  o->len = 0;
  if (!r->request_id[0]) assign_request_id(r);
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
  conn_write(c, o->data, o->len, close_after);
  if (close_after) {
    c->phase = C_CLOSING;
    return;
  }
  c->phase = C_IDLE;
  set_timer(c, th_cfg.keepalive_timeout_ms);
  /* Answered from inside conn_continue (a built-in endpoint, an error, a handler
   * that did not wait): its loop goes on with the next pipelined request.
   * Calling it again here would recurse once per pipelined request. */
  if (!c->parsing) conn_continue(c);
}

static void conn_error_with(th_conn *c, int status, const char *code, const char *message,
                            const char *extra_headers);

/* The 503s say when to come back, as lua/web/errors.lua's `unavailable` does. */
#define RETRY_AFTER "Retry-After: 1\r\n"

void th_conn_error(th_conn *c, int status, const char *code, const char *message) {
  conn_error_with(c, status, code, message, NULL);
}

/* 405 with the Allow header listing what the path accepts. */
static void conn_error_allow(th_conn *c, const char *allow) {
  char hdr[128];
  snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
  conn_error_with(c, 405, "method_not_allowed", "this path does not accept that method", hdr);
}

static void conn_error_with(th_conn *c, int status, const char *code, const char *message,
                            const char *extra_headers) {
  th_response res = {0};
  th_buf body = {0};
  res.status = status;
  th_buf_adds(&body, "{\"error\":{\"code\":\"");
  th_buf_adds(&body, code);
  th_buf_adds(&body, "\",\"message\":\"");
  th_buf_json_escape(&body, message, strlen(message));
  th_buf_adds(&body, "\",\"request_id\":\"");
  if (!c->req.request_id[0]) assign_request_id(&c->req);
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

/* ---- built-in endpoints ------------------------------------------------ */

static void respond_simple(th_conn *c, int status, const char *ctype, const char *body, size_t len,
                           const char *route, th_metrics_route *metrics) {
  th_response res = {0};
  res.status = status;
  res.route = route;
  res.metrics = metrics;
  th_buf_printf(&res.headers, "Content-Type: %s\r\nCache-Control: no-store\r\n", ctype);
  res.body = body;
  res.body_len = len;
  th_conn_respond(c, &res);
  th_buf_free(&res.headers);
}

static int handle_builtin(th_conn *c, th_request *r) {
  const char *path = r->url.data;
  size_t n = r->path_len;
  int get = r->method && (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"));
  if (!get) return 0;
  if (n == 8 && !memcmp(path, "/healthz", 8)) {
    static const char ok[] = "{\"status\":\"ok\"}";
    respond_simple(c, 200, "application/json", ok, sizeof ok - 1, "/healthz", m_healthz);
    return 1;
  }
  if (n == 7 && !memcmp(path, "/readyz", 7)) {
    char body[256];
    int db = ready_probe ? ready_probe() : 1;
    int bundles = current_gen != NULL;
    int ok = db && bundles && !draining;
    int len = snprintf(body, sizeof body,
                       "{\"status\":\"%s\",\"database\":%s,\"bundles\":%s,\"draining\":%s}",
                       ok ? "ready" : "not ready", db ? "true" : "false",
                       bundles ? "true" : "false", draining ? "true" : "false");
    respond_simple(c, ok ? 200 : 503, "application/json", body, (size_t)len, "/readyz", m_readyz);
    return 1;
  }
  if (n == 8 && !memcmp(path, "/metrics", 8)) {
    th_buf m = {0};
    th_metrics_render(&m);
    respond_simple(c, 200, "text/plain; version=0.0.4", m.data ? m.data : "", m.len, "/metrics",
                   m_metrics);
    th_buf_free(&m);
    return 1;
  }
  return 0;
}

/* ---- dispatch ---------------------------------------------------------- */

static void dispatch(th_conn *c) {
  th_request *r = &c->req;
  assign_request_id(r);
  if (handle_builtin(c, r)) return;
  if (!current_gen) {
    conn_error_with(c, 503, "unavailable", "no bundles are loaded; retry shortly", RETRY_AFTER);
    return;
  }
  int mismatch = 0;
  const th_route *route =
      th_route_match(current_router, r->method, r->url.data, r->path_len, &mismatch);
  if (!route) {
    if (mismatch) {
      conn_error_allow(c, th_route_allowed(current_router, r->url.data, r->path_len));
    } else {
      th_conn_error(c, 404, "not_found", "no route for this path");
    }
    return;
  }
  c->refs++; /* released in th_http_dispatch_done */
  th_http_dispatch(c, r, route);
}

void th_http_dispatch_done(th_conn *c) {
  if (--c->refs == 0) free(c);
}

int th_conn_closed(th_conn *c) { return c->phase == C_CLOSING; }

/* WebSocket (ws/upgrade.c): give the socket of c to another owner. libuv cannot
 * release a descriptor, so the new owner gets a dup(); bytes read past the request
 * are appended to rest, and c closes as if the peer had gone (the handler's answer is
 * dropped). Returns the descriptor or a negative errno. */
int th_conn_take_socket(th_conn *c, th_buf *rest);
th_request *th_conn_request(th_conn *c);
th_request *th_conn_request(th_conn *c) { return &c->req; }
int th_conn_take_socket(th_conn *c, th_buf *rest) {
  uv_os_fd_t fd;
  if (c->phase == C_CLOSING || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0) return -EBADF;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -errno;
  if (c->in.len > c->in_off) th_buf_add(rest, c->in.data + c->in_off, c->in.len - c->in_off);
  c->in_off = c->in.len;
  conn_close(c);
  return copy;
}

/* Parse what is buffered; stops after one complete request (paused). */
static void conn_continue(th_conn *c) {
  c->parsing = 1;
  while (c->phase != C_HANDLING && c->phase != C_CLOSING && c->in_off < c->in.len &&
         !output_blocked(c)) {
    const char *start = c->in.data + c->in_off;
    size_t len = c->in.len - c->in_off;
    c->exec_start = start;
    llhttp_errno_t err = llhttp_execute(&c->parser, start, len);
    if (err == HPE_OK) {
      c->in_off = c->in.len;
    } else if (err == HPE_PAUSED) {
      c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
      llhttp_resume(&c->parser);
      dispatch(c);
      if (c->phase == C_HANDLING) break; /* a handler runs; continue when it answers */
      continue;
    } else if (c->phase == C_CLOSING) {
      c->parsing = 0;
      return; /* closed from inside a callback */
    } else {
      int status = c->error_status              ? c->error_status
                   : err == HPE_INVALID_VERSION ? 505 /* e.g. HTTP/1.2, HTTP/0.9 */
                                                : 400;
      const char *code = status == 431   ? "headers_too_large"
                         : status == 413 ? "body_too_large"
                         : status == 417 ? "expectation_failed"
                         : status == 501 ? "not_implemented"
                         : status == 505 ? "http_version_not_supported"
                                         : "bad_request";
      const char *msg = status == 431   ? "request headers are too large"
                        : status == 413 ? "request body is too large"
                        : c->error_msg  ? c->error_msg
                                        : llhttp_get_error_reason(&c->parser);
      if (!c->req.method) c->req.method = "-";
      c->error_status = status;
      c->req.keep_alive = 0;
      c->parsing = 0;
      th_conn_error(c, status, code, msg ? msg : "malformed request");
      return;
    }
  }
  c->parsing = 0;
  /* Compact the input buffer once everything is parsed. */
  if (c->in_off == c->in.len) {
    c->in.len = 0;
    c->in_off = 0;
  }
  conn_start_reading(c);
}

/* ---- reading, timers, closing ------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  th_conn *c = h->data;
  (void)suggested;
  size_t want = 65536;
  if (c->in.cap - c->in.len < want + 1) {
    size_t cap = c->in.cap ? c->in.cap : want + 1;
    while (cap - c->in.len < want + 1)
      cap *= 2;
    c->in.data = realloc(c->in.data, cap);
    if (!c->in.data) abort();
    c->in.cap = cap;
  }
  *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  th_conn *c = s->data;
  (void)buf;
  if (n < 0) {
    conn_close(c); /* EOF or error; a running handler finishes and is discarded */
    return;
  }
  if (n == 0) return;
  c->in.len += (size_t)n;
  if (c->phase == C_IDLE) {
    c->phase = C_HEAD;
    set_timer(c, th_cfg.header_timeout_ms);
  }
  if (c->phase != C_HANDLING)
    conn_continue(c);
  else
    conn_start_reading(c);
}

/* Stop reading while a request is being handled and enough is buffered, or
 * while the client leaves too many answers unread, so a client cannot make us
 * buffer without bound in either direction. */
static void conn_start_reading(th_conn *c) {
  int want =
      c->phase != C_CLOSING && !output_blocked(c) &&
      !(c->phase == C_HANDLING && c->in.len - c->in_off > th_cfg.max_header + th_cfg.max_body);
  if (want && !c->reading) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void on_timeout(uv_timer_t *t) {
  th_conn *c = t->data;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0) {
    /* Answers still wait for it (it is not idle): it is given time while the
     * kernel's send queue moves (it reads, if slowly), and closed once it stops
     * moving (a 408 would not reach it either). */
    int fd, queued = -1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 &&
        queued != c->last_send_queue) {
      c->last_send_queue = queued;
      set_timer(c, th_cfg.keepalive_timeout_ms);
      return;
    }
    conn_close(c);
    return;
  }
  if (c->phase == C_HEAD || c->phase == C_BODY) {
    if (!c->req.method) c->req.method = "-";
    c->error_status = 408;
    c->req.keep_alive = 0;
    th_conn_error(c, 408, "request_timeout",
                  c->phase == C_HEAD ? "request headers were not complete in time"
                                     : "request body was not complete in time");
    return;
  }
  conn_close(c); /* idle keep-alive connection */
}

static void set_timer(th_conn *c, int ms) {
  if (ms <= 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
}

static void on_handle_closed(uv_handle_t *h) {
  th_conn *c = h->data;
  if (--c->refs == 0) free(c);
}

static void conn_close(th_conn *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  c->phase = C_CLOSING;
  th_list_remove(&c->link);
  n_conns--;
  th_buf_free(&c->in);
  th_buf_free(&c->out);
  th_buf_free(&c->req.url);
  th_buf_free(&c->req.hbuf);
  th_buf_free(&c->req.body);
  free(c->req.headers);
  c->req.headers = NULL;
  c->req.nheaders = c->req.cap_headers = 0;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  if (draining && n_conns == 0 && drained_cb) {
    void (*cb)(void) = drained_cb;
    drained_cb = NULL;
    cb();
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  th_conn *c = calloc(1, sizeof *c);
  if (!c) abort();
  uv_tcp_init(th_loop(), &c->tcp);
  uv_timer_init(th_loop(), &c->timer);
  c->tcp.data = c->timer.data = c;
  c->refs = 2;
  c->last_send_queue = -1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  c->req.method_id = -1;
  th_list_push_front(&conns, &c->link);
  n_conns++;
  c->phase = C_HEAD; /* a new connection must send its headers in time */
  if (n_conns > th_cfg.max_connections) {
    c->req.method = "-";
    c->req.keep_alive = 0;
    c->error_status = 503;
    conn_error_with(c, 503, "too_many_connections",
                    "the server is at its connection limit; retry shortly", RETRY_AFTER);
    return;
  }
  set_timer(c, th_cfg.header_timeout_ms);
  conn_start_reading(c);
}

/* ---- listening and lifecycle ------------------------------------------- */

int th_server_listen(const char *host, int port, int reuseport) {
  struct sockaddr_storage addr;
  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) < 0) return -EINVAL;
  } else if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) < 0) {
    return -EINVAL;
  }
  /* libuv 1.44 has no SO_REUSEPORT flag: make the socket ourselves so that
   * worker processes can each bind the same port and the kernel spreads
   * connections across them. */
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  socklen_t alen = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)&addr, alen) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  uv_tcp_init(th_loop(), &listener);
  if (uv_tcp_open(&listener, fd) < 0) {
    close(fd);
    return -EINVAL;
  }
  int rc = uv_listen((uv_stream_t *)&listener, 1024, on_connection);
  if (rc < 0) return rc;
  listening = 1;

  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_version_complete = on_version_complete;
  settings.on_chunk_extension_name = on_chunk_extension;
  settings.on_chunk_extension_value = on_chunk_extension;
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_header_value_complete = on_header_value_complete;
  settings.on_headers_complete = on_headers_complete;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
  m_healthz = th_metrics_route_get("/healthz");
  m_readyz = th_metrics_route_get("/readyz");
  m_metrics = th_metrics_route_get("/metrics");
  m_unmatched = th_metrics_route_get("unmatched");
  uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
  rid_prefix = seed * 0x9E3779B97F4A7C15ull;
  return 0;
}

int th_server_port(void) {
  struct sockaddr_storage addr;
  int len = sizeof addr;
  if (!listening || uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len) < 0) return -1;
  return ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                          : ((struct sockaddr_in *)&addr)->sin_port);
}

int th_server_set_generation(th_generation *g) {
  th_router *router = NULL;
  if (g && !(router = th_router_build(g))) return -1;
  th_generation *old = current_gen;
  th_router *old_router = current_router;
  current_gen = g;
  current_router = router;
  th_router_free(old_router);
  if (old) th_generation_retire(old);
  return 0;
}

void th_server_set_ready_probe(int (*probe)(void)) { ready_probe = probe; }

int th_server_draining(void) { return draining; }
int th_server_active_connections(void) { return n_conns; }

/* Stop accepting, close idle connections now and busy ones after their
 * response; on_drained runs when the last connection is gone. */
void th_server_drain(void (*on_drained)(void)) {
  draining = 1;
  drained_cb = on_drained;
  if (listening) {
    uv_close((uv_handle_t *)&listener, NULL);
    listening = 0;
  }
  th_list *n = th_list_first(&conns);
  while (n) {
    th_list *next = th_list_next(&conns, n);
    th_conn *c = th_list_entry(n, th_conn, link);
    if (c->phase == C_IDLE) conn_close(c);
    n = next;
  }
  if (n_conns == 0 && drained_cb) {
    drained_cb = NULL;
    on_drained();
  }
}

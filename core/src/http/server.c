/* http/server.c: the HTTP/1.1 server on libuv + llhttp: the listening socket,
 * accepting, and every connection's life (th_conn, http/conn.h).
 *
 * A connection parses (parse.c) and handles one request at a time: the parser
 * pauses after each message, the request is dispatched (a built-in endpoint, a
 * route's handler in lua_bridge.c, or an error), and parsing resumes after the
 * response is queued (respond.c), so pipelined responses leave in order. Past
 * MAX_PENDING_OUTPUT_BYTES of unsent answers a connection is neither read nor
 * parsed until it drains (backpressure). Limits answer with their own status:
 * 431 (headers), 413 (body), 400 (malformed), 408 (slow headers or body), 503
 * (connection cap). A th_conn is freed in the close callback of its last handle,
 * and never while a handler still runs for it (refs). Here: reading, timers,
 * closing, dispatch, the built-in endpoints, listen and drain.
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
#include <unistd.h>

#include "http/conn.h"
#include "runtime/config.h"
#include "runtime/metrics.h"

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
/* The series of the built-in endpoints. */
static th_metrics_route *m_healthz, *m_readyz, *m_metrics;

static void conn_start_reading(th_conn *c);

/* Fairness: one read may bring thousands of pipelined requests (a client that pipelines
 * /healthz and never reads came back with ~1,900 every SEND_TIMEOUT_MS, and 125 of them
 * at once stalled every other client for over a second: docs/reliability.md). A
 * connection answers at most PIPELINE_TURN of them per loop turn; the rest wait for the
 * next turn (an idle handle, so the loop does not block in poll meanwhile), unread
 * input is not added to meanwhile, and the other connections get their turn between. */
#define PIPELINE_TURN 32
static uv_idle_t resume_idle;
static int resume_idle_ready;
static th_list deferred = TH_LIST_INIT(deferred);

static void on_resume_idle(uv_idle_t *h) {
  th_list batch = TH_LIST_INIT(batch);
  th_list_move_all(&batch, &deferred); /* what defers again now waits for the next turn */
  th_list *n;
  while ((n = th_list_first(&batch))) {
    th_conn *c = th_list_entry(n, th_conn, defer_link);
    th_list_remove(n);
    c->deferred = 0;
    if (c->phase != C_CLOSING && c->phase != C_HANDLING && !c->parsing) th__conn_continue(c);
  }
  if (!th_list_first(&deferred)) uv_idle_stop(h);
}

static void conn_defer(th_conn *c) {
  if (c->deferred) return;
  if (!resume_idle_ready) {
    uv_idle_init(th_loop(), &resume_idle);
    uv_unref((uv_handle_t *)&resume_idle);
    resume_idle_ready = 1;
  }
  c->deferred = 1;
  th_list_push_back(&deferred, &c->defer_link);
  uv_idle_start(&resume_idle, on_resume_idle);
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
  th__http_assign_request_id(r);
  if (handle_builtin(c, r)) return;
  if (!current_gen) {
    th__conn_error_with(c, 503, "unavailable", "no bundles are loaded; retry shortly", RETRY_AFTER);
    return;
  }
  int mismatch = 0;
  const th_route *route =
      th_route_match(current_router, r->method, r->url.data, r->path_len, &mismatch);
  if (!route) {
    if (mismatch) {
      th__conn_error_allow(c, th_route_allowed(current_router, r->url.data, r->path_len));
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

th_request *th_conn_request(th_conn *c) { return &c->req; }

/* WebSocket (ws/upgrade.c): see http.h. */
int th_conn_take_socket(th_conn *c, th_buf *rest) {
  uv_os_fd_t fd;
  if (c->phase == C_CLOSING || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0) return -EBADF;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return -errno;
  if (c->in.len > c->in_off) th_buf_add(rest, c->in.data + c->in_off, c->in.len - c->in_off);
  c->in_off = c->in.len;
  th__conn_close(c);
  return copy;
}

/* Parse what is buffered; stops after one complete request (paused). */
void th__conn_continue(th_conn *c) {
  int answered = 0;
  c->parsing = 1;
  while (c->phase != C_HANDLING && c->phase != C_CLOSING && c->in_off < c->in.len &&
         !th__conn_output_blocked(c)) {
    if (answered == PIPELINE_TURN) {
      conn_defer(c);
      break;
    }
    const char *start = c->in.data + c->in_off;
    size_t len = c->in.len - c->in_off;
    c->exec_start = start;
    llhttp_errno_t err = llhttp_execute(&c->parser, start, len);
    if (err == HPE_OK) {
      c->in_off = c->in.len;
    } else if (err == HPE_PAUSED) {
      c->in_off = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
      llhttp_resume(&c->parser);
      answered++;
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
  th__conn_flush(c);
  if (c->phase == C_CLOSING) return;
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
    th__conn_close(c); /* EOF or error; a running handler finishes and is discarded */
    return;
  }
  if (n == 0) return;
  c->in.len += (size_t)n;
  if (c->phase == C_IDLE) {
    c->phase = C_HEAD;
    th__conn_set_timer(c, th_cfg.header_timeout_ms);
  }
  if (c->phase != C_HANDLING)
    th__conn_continue(c);
  else
    conn_start_reading(c);
}

/* Stop reading while a request is being handled and enough is buffered, or
 * while the client leaves too many answers unread, so a client cannot make us
 * buffer without bound in either direction. */
static void conn_start_reading(th_conn *c) {
  int want =
      c->phase != C_CLOSING && !c->deferred && !th__conn_output_blocked(c) &&
      !(c->phase == C_HANDLING && c->in.len - c->in_off > th_cfg.max_header + th_cfg.max_body);
  if (want && !c->reading) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* Bytes c's client has taken so far: handed to the socket, less what libuv still
 * queues and what the kernel has not had acknowledged (SIOCOUTQ). -1 when the socket
 * cannot say. */
static int64_t conn_delivered(th_conn *c) {
  int fd, unacked;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0 || ioctl(fd, SIOCOUTQ, &unacked) < 0) return -1;
  return (int64_t)c->out_total - (int64_t)uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) -
         unacked;
}

void th__conn_send_window(th_conn *c) {
  if (c->send_window) return;
  int64_t got = conn_delivered(c);
  c->send_window = 1;
  c->send_mark = got < 0 ? 0 : (uint64_t)got;
  c->send_mark_ms = uv_now(th_loop());
}

/* Answers still wait for c's client (it is not idle): over every SEND_TIMEOUT_MS
 * window it must take MIN_SEND_RATE_BYTES_PER_SECOND's worth (at least one byte),
 * or it is closed (a 408 would not reach it either). Judged on the bytes it took,
 * not on whether the send queue moved at all: a client taking a little in every
 * window moved it, and stayed for ever (slow_clients_spec). */
static void send_window_check(th_conn *c) {
  uint64_t now = uv_now(th_loop());
  if (!c->send_window) th__conn_send_window(c);
  uint64_t elapsed = now - c->send_mark_ms;
  if (elapsed < (uint64_t)th_cfg.send_timeout_ms) {
    /* another timer (a new request's header deadline) ran before the window's end */
    th__conn_set_timer(c, th_cfg.send_timeout_ms - (int)elapsed);
    return;
  }
  int64_t got = conn_delivered(c);
  uint64_t need = th_cfg.min_send_rate * elapsed / 1000;
  if (need < 1) need = 1;
  if (got >= 0 && (uint64_t)got >= c->send_mark + need) {
    c->send_mark = (uint64_t)got;
    c->send_mark_ms = now;
    th__conn_set_timer(c, th_cfg.send_timeout_ms);
    return;
  }
  th__conn_close(c);
}

static void on_timeout(uv_timer_t *t) {
  th_conn *c = t->data;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0) {
    send_window_check(c);
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
  th__conn_close(c); /* idle keep-alive connection */
}

void th__conn_set_timer(th_conn *c, int ms) {
  if (ms <= 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
}

void th__conn_idle(th_conn *c) {
  if (!draining)
    th__conn_set_timer(c, th_cfg.keepalive_timeout_ms);
  else if (th_cfg.drain_idle_grace_ms > 0)
    th__conn_set_timer(c, th_cfg.drain_idle_grace_ms);
  else
    th__conn_close(c);
}

static void on_handle_closed(uv_handle_t *h) {
  th_conn *c = h->data;
  if (--c->refs == 0) free(c);
}

void th__conn_close(th_conn *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  c->phase = C_CLOSING;
  th_list_remove(&c->link);
  if (c->deferred) {
    th_list_remove(&c->defer_link);
    c->deferred = 0;
  }
  n_conns--;
  th_buf_free(&c->in);
  th_buf_free(&c->out);
  th_buf_free(&c->pend);
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

static th_conn *conn_new(void) {
  th_conn *c = calloc(1, sizeof *c);
  if (!c) abort();
  uv_tcp_init(th_loop(), &c->tcp);
  uv_timer_init(th_loop(), &c->timer);
  c->tcp.data = c->timer.data = c;
  c->refs = 2;
  return c;
}

static void conn_discard(th_conn *c) {
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void conn_start(th_conn *c);

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  th_conn *c = conn_new();
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    conn_discard(c);
    return;
  }
  conn_start(c);
}

/* Serve an accepted connection (its tcp handle is open). */
static void conn_start(th_conn *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  /* The kernel takes at most MAX_PENDING_OUTPUT_BYTES of answers not yet sent; the
   * rest waits in libuv's queue, where backpressure sees it. Without this a socket's
   * autotuned buffer held megabytes more of a client that never reads (2.8 MB measured
   * on loopback), and such a client made the server answer thousands of pipelined
   * requests per connection before it stopped being read (docs/reliability.md). */
  uv_os_fd_t fd;
  int lowat = (int)th_cfg.max_pending_output;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
  th__peer_address(&c->tcp, c->req.peer, sizeof c->req.peer);
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
    th__conn_error_with(c, 503, "too_many_connections",
                        "the server is at its connection limit; retry shortly", RETRY_AFTER);
    return;
  }
  th__conn_set_timer(c, th_cfg.header_timeout_ms);
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

  th__http_parser_settings(&settings);
  m_healthz = th_metrics_route_get("/healthz");
  m_readyz = th_metrics_route_get("/readyz");
  m_metrics = th_metrics_route_get("/metrics");
  th__http_respond_init();
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

/* Connections the kernel completed but nobody accepted yet would be reset when
 * the listener closes (SO_REUSEPORT does not hand them to another socket of the
 * port): take them now, so that they are served like the others. */
static void accept_backlog(void) {
  uv_os_fd_t lfd;
  if (uv_fileno((uv_handle_t *)&listener, &lfd) < 0) return;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    th_conn *c = conn_new();
    if (uv_tcp_open(&c->tcp, fd) < 0) {
      close(fd);
      conn_discard(c);
      continue;
    }
    conn_start(c);
  }
}

/* Stop accepting (after taking what the kernel already accepted), answer every
 * request still coming with `Connection: close`, close busy connections after
 * their response and idle keep-alive ones once DRAIN_IDLE_GRACE_MS passes without
 * a request (at once when it is 0): a client that was about to send gets its
 * answer rather than a connection closed under its request. on_drained runs when
 * the last connection is gone. */
void th_server_drain(void (*on_drained)(void)) {
  draining = 1;
  drained_cb = on_drained;
  if (listening) {
    accept_backlog();
    uv_close((uv_handle_t *)&listener, NULL);
    listening = 0;
  }
  th_list *n = th_list_first(&conns);
  while (n) {
    th_list *next = th_list_next(&conns, n);
    th_conn *c = th_list_entry(n, th_conn, link);
    /* (one with answers still queued becomes idle when they are sent: on_written) */
    if (c->phase == C_IDLE && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
      th__conn_idle(c);
    n = next;
  }
  if (n_conns == 0 && drained_cb) {
    drained_cb = NULL;
    on_drained();
  }
}

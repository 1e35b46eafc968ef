/* ws/conn.c: WebSocket connections of this worker: the per-user index, the bounded
 * send queue of each connection (written only from the WRITEABLE callback), the
 * sequenced sends that make event delivery at-most-once and in order per connection,
 * the rate limit, and the counters behind /metrics.
 *
 * A th_ws_conn is allocated when a handshake is accepted and freed by
 * th_ws__conn_free once libwebsockets has closed the socket and its Lua object is
 * released (prim_ws.c). Messages in the queue are owned by the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/metrics.h"
#include "ws/ws.h"

th_ws_limits th_ws_cfg;

/* A WS_* setting: a whole number from the environment, or the default (a value that
 * is not one is ignored with a warning). */
static long setting(const char *name, long fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 0) {
    th_log(NULL, "warn", "ws: %s=%s is not a whole number; using %ld", name, v, fallback);
    return fallback;
  }
  return n;
}

void th_ws_read_config(void) {
  th_ws_cfg.send_queue_bytes = (size_t)setting("WS_SEND_QUEUE_BYTES", 1 << 20);
  th_ws_cfg.max_message_bytes = (size_t)setting("WS_MAX_MESSAGE_BYTES", 64 * 1024);
  th_ws_cfg.rate_per_second = (double)setting("WS_RATE_PER_SECOND", 20);
  th_ws_cfg.rate_burst = (double)setting("WS_RATE_BURST", 40);
  th_ws_cfg.ping_seconds = (int)setting("WS_PING_SECONDS", 30);
  th_ws_cfg.idle_timeout_seconds = (int)setting("WS_IDLE_TIMEOUT_SECONDS", 75);
  th_ws_cfg.max_connections = (int)setting("WS_MAX_CONNECTIONS", 20000);
  if (th_ws_cfg.send_queue_bytes < 1024) th_ws_cfg.send_queue_bytes = 1024;
  if (th_ws_cfg.max_message_bytes < 128) th_ws_cfg.max_message_bytes = 128;
  if (th_ws_cfg.rate_burst < 1) th_ws_cfg.rate_burst = 1;
  if (th_ws_cfg.ping_seconds < 1) th_ws_cfg.ping_seconds = 1;
  if (th_ws_cfg.idle_timeout_seconds <= th_ws_cfg.ping_seconds)
    th_ws_cfg.idle_timeout_seconds = th_ws_cfg.ping_seconds + 1;
}

/* ---- counters ---------------------------------------------------------- */

/* In the table the workers share (runtime/metrics), so that a scrape answered by
 * any worker shows the group's totals; found once, by th_ws_metrics_init. */
static uint64_t *n_in, *n_out, *n_overflows, *n_accepted;
static const int close_codes[] = {1000, 1001, 1002, 1006, 1007, 1008, 1009, 1011, 0};
static uint64_t *n_closes[sizeof close_codes / sizeof close_codes[0]];
static int g_conns = -1, g_queued = -1, g_largest = -1; /* per-worker gauges */

void th_ws__count_in(void) { th_metrics_add(n_in, 1); }

void th_ws__count_close(int code) {
  size_t i = 0;
  while (close_codes[i] && close_codes[i] != code)
    i++;
  th_metrics_add(n_closes[i], 1); /* the last slot counts every other code */
}

/* ---- the index --------------------------------------------------------- */

#define NBUCKETS 4096
static th_ws_conn *buckets[NBUCKETS];
static th_ws_conn *all;
static int n_conns;
static uint64_t next_id;

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h % NBUCKETS;
}

th_ws_conn *th_ws__conn_new(th_state *s, const char *user) {
  th_ws_conn *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->state = s;
  c->user = strdup(user);
  if (!c->user) abort();
  c->id = ++next_id;
  c->endpoint_ref = c->object_ref = LUA_NOREF;
  c->tokens = th_ws_cfg.rate_burst;
  c->tokens_at_ms = uv_now(th_loop());
  s->inflight++; /* the accepting state stays open while the connection lives */
  return c;
}

/* Put c in the per-user and per-worker lists (once the socket is adopted). */
void th_ws__index(th_ws_conn *c) {
  th_ws_conn **b = &buckets[hash(c->user)];
  c->user_next = *b;
  if (*b) (*b)->user_prev = c;
  *b = c;
  c->all_next = all;
  if (all) all->all_prev = c;
  all = c;
  n_conns++;
  th_metrics_add(n_accepted, 1);
}

static void unindex(th_ws_conn *c) {
  if (!c->user) return;
  th_ws_conn **b = &buckets[hash(c->user)];
  if (c->user_prev)
    c->user_prev->user_next = c->user_next;
  else if (*b == c)
    *b = c->user_next;
  else
    return; /* never indexed */
  if (c->user_next) c->user_next->user_prev = c->user_prev;
  if (c->all_prev)
    c->all_prev->all_next = c->all_next;
  else
    all = c->all_next;
  if (c->all_next) c->all_next->all_prev = c->all_prev;
  c->user_next = c->user_prev = c->all_next = c->all_prev = NULL;
  n_conns--;
}

th_ws_conn *th_ws__user_first(const char *user) {
  for (th_ws_conn *c = buckets[hash(user)]; c; c = c->user_next)
    if (!strcmp(c->user, user)) return c;
  return NULL;
}

th_ws_conn *th_ws__all_first(void) { return all; }
int th_ws__count(void) { return n_conns; }

static void free_list(th_ws_msg *m) {
  while (m) {
    th_ws_msg *next = m->next;
    free(m);
    m = next;
  }
}

/* Called when the socket is gone: out of the index, queues freed. The struct itself
 * goes when the Lua side lets go of it too (prim_ws.c). */
void th_ws__conn_free(th_ws_conn *c) {
  unindex(c);
  free_list(c->head);
  free_list(c->held);
  c->head = c->tail = c->held = c->held_tail = NULL;
  c->queued = c->held_bytes = 0;
  th_buf_free(&c->rx);
}

/* ---- sending ----------------------------------------------------------- */

static th_ws_msg *msg_new(const char *data, size_t len) {
  th_ws_msg *m = malloc(sizeof *m + LWS_PRE + len);
  if (!m) abort();
  m->next = NULL;
  m->len = len;
  memcpy(m->data + LWS_PRE, data, len);
  return m;
}

void th_ws__close(th_ws_conn *c, int code, const char *reason) {
  if (c->closed || c->close_code) return;
  c->close_code = code;
  snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
  free_list(c->head);
  free_list(c->held);
  c->head = c->tail = c->held = c->held_tail = NULL;
  c->queued = c->held_bytes = 0;
  if (c->wsi) {
    lws_callback_on_writable(c->wsi);
    /* A peer that does not read never makes the socket writable: give the close
     * frame a moment, then drop the connection. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
  }
}

/* Over the bound (queued + held + len): the connection is closed with 1008, its
 * queues freed. Returns whether it overflowed. */
static int overflows(th_ws_conn *c, size_t len) {
  if (c->queued + c->held_bytes + len <= th_ws_cfg.send_queue_bytes) return 0;
  th_metrics_add(n_overflows, 1);
  th_log(NULL, "warn", "ws: connection %llu of %s: send queue over %zu bytes, closing (1008)",
         (unsigned long long)c->id, c->user, th_ws_cfg.send_queue_bytes);
  th_ws__close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue overflow");
  return 1;
}

int th_ws__send(th_ws_conn *c, const char *data, size_t len) {
  if (c->closed || c->close_code || !c->wsi) return -1;
  if (overflows(c, len)) return -1;
  th_ws_msg *m = msg_new(data, len);
  if (c->tail)
    c->tail->next = m;
  else
    c->head = m;
  c->tail = m;
  c->queued += len;
  lws_callback_on_writable(c->wsi);
  return 0;
}

int th_ws__send_seq(th_ws_conn *c, const char *data, size_t len, uint64_t seq) {
  if (c->replaying) {
    /* held messages count against the bound too: a client that never reads must not
     * grow them while a replay runs */
    if (c->closed || c->close_code || !c->wsi || overflows(c, len)) return -1;
    th_ws_msg *m = msg_new(data, len);
    c->held_bytes += len;
    memcpy(m->data, &seq, sizeof seq); /* the headroom carries the sequence number */
    if (c->held_tail)
      c->held_tail->next = m;
    else
      c->held = m;
    c->held_tail = m;
    return 0;
  }
  if (seq <= c->last_seq) return 1; /* already sent */
  c->last_seq = seq;
  return th_ws__send(c, data, len);
}

void th_ws__end_replay(th_ws_conn *c, uint64_t last) {
  if (last > c->last_seq) c->last_seq = last;
  c->replaying = 0;
  th_ws_msg *m = c->held;
  c->held = c->held_tail = NULL;
  c->held_bytes = 0;
  while (m) {
    th_ws_msg *next = m->next;
    uint64_t seq;
    memcpy(&seq, m->data, sizeof seq);
    th_ws__send_seq(c, (const char *)m->data + LWS_PRE, m->len, seq);
    free(m);
    m = next;
  }
}

/* One message per WRITEABLE callback; ask again while more are queued. */
int th_ws__writable(th_ws_conn *c) {
  /* libwebsockets failed the connection itself (a protocol error, or 1009 from
   * on_receive) and sent or will send its own close frame: nothing may follow it
   * (RFC 6455 5.5.1), so queued messages stay unsent. */
  if (lws_get_close_length(c->wsi) > 0) return 0;
  if (c->close_code) {
    /* Returning -1 after lws_close_reason from this callback makes lws 4.1 drop the
     * socket without the frame (measured: shutdown + close, nothing sent). So the
     * frame is written here, with the write type lws uses for its own close frames
     * (4: LWS_WRITE_CLOSE, hidden from the public header), and then we close. */
    unsigned char frame[LWS_PRE + 2 + sizeof c->close_reason];
    size_t n = strlen(c->close_reason);
    frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
    frame[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
    memcpy(frame + LWS_PRE + 2, c->close_reason, n);
    lws_write(c->wsi, frame + LWS_PRE, 2 + n, (enum lws_write_protocol)4);
    return -1;
  }
  th_ws_msg *m = c->head;
  if (!m) return 0;
  int n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
  if (n < (int)m->len) return -1; /* lws buffers partial writes itself; less is an error */
  c->head = m->next;
  if (!c->head) c->tail = NULL;
  c->queued -= m->len;
  free(m);
  th_metrics_add(n_out, 1);
  if (c->head) lws_callback_on_writable(c->wsi);
  return 0;
}

/* Token bucket: WS_RATE_PER_SECOND, burst WS_RATE_BURST. */
int th_ws__rate_ok(th_ws_conn *c) {
  uint64_t now = uv_now(th_loop());
  c->tokens += (double)(now - c->tokens_at_ms) * th_ws_cfg.rate_per_second / 1000.0;
  c->tokens_at_ms = now;
  if (c->tokens > th_ws_cfg.rate_burst) c->tokens = th_ws_cfg.rate_burst;
  if (c->tokens < 1) return 0;
  c->tokens -= 1;
  return 1;
}

/* ---- /metrics ---------------------------------------------------------- */

/* This worker's gauges, published with its other gauges (every second and before a
 * scrape it answers). */
static void publish_gauges(void) {
  size_t queued = 0, largest = 0;
  for (th_ws_conn *c = all; c; c = c->all_next) {
    size_t n = c->queued + c->held_bytes;
    queued += n;
    if (n > largest) largest = n;
  }
  th_metrics_gauge_set(g_conns, n_conns);
  th_metrics_gauge_set(g_queued, (int64_t)queued);
  th_metrics_gauge_set(g_largest, (int64_t)largest);
}

void th_ws_metrics_init(void) {
  char sample[96];
  n_accepted = th_metrics_counter("todo_host_ws_accepted_total");
  n_in = th_metrics_counter("todo_host_ws_messages_total{direction=\"in\"}");
  n_out = th_metrics_counter("todo_host_ws_messages_total{direction=\"out\"}");
  n_overflows = th_metrics_counter("todo_host_ws_queue_overflows_total");
  for (size_t i = 0; i < sizeof close_codes / sizeof close_codes[0]; i++) {
    if (close_codes[i])
      snprintf(sample, sizeof sample, "todo_host_ws_closes_total{code=\"%d\"}", close_codes[i]);
    else
      snprintf(sample, sizeof sample, "todo_host_ws_closes_total{code=\"other\"}");
    n_closes[i] = th_metrics_counter(sample);
  }
  g_conns = th_metrics_gauge("todo_host_ws_connections");
  g_queued = th_metrics_gauge("todo_host_ws_send_queue_bytes");
  g_largest = th_metrics_gauge("todo_host_ws_send_queue_largest_bytes");
  th_metrics_add_publisher(publish_gauges);
}

static void counter(th_buf *out, const char *sample, const uint64_t *c) {
  th_buf_printf(out, "%s %llu\n", sample, (unsigned long long)th_metrics_counter_value(c));
}

/* Counters: the group's totals; gauges: every live worker's, labelled with its pid. */
void th_ws_metrics_render(th_buf *out) {
  th_buf_adds(out, "# HELP todo_host_ws_send_queue_bytes Bytes queued for WebSocket clients that "
                   "have not taken them yet (all connections of a worker; each is bounded by "
                   "WS_SEND_QUEUE_BYTES).\n"
                   "# TYPE todo_host_ws_send_queue_bytes gauge\n");
  th_metrics_render_gauge(out, g_queued);
  th_buf_adds(out, "# HELP todo_host_ws_send_queue_largest_bytes The longest send queue of one "
                   "WebSocket connection of a worker.\n"
                   "# TYPE todo_host_ws_send_queue_largest_bytes gauge\n");
  th_metrics_render_gauge(out, g_largest);
  th_buf_adds(out, "# HELP todo_host_ws_connections Open WebSocket connections.\n"
                   "# TYPE todo_host_ws_connections gauge\n");
  th_metrics_render_gauge(out, g_conns);
  th_buf_adds(out, "# HELP todo_host_ws_accepted_total WebSocket handshakes accepted (all "
                   "workers).\n"
                   "# TYPE todo_host_ws_accepted_total counter\n");
  counter(out, "todo_host_ws_accepted_total", n_accepted);
  th_buf_adds(out, "# HELP todo_host_ws_messages_total WebSocket messages by direction (all "
                   "workers).\n"
                   "# TYPE todo_host_ws_messages_total counter\n");
  counter(out, "todo_host_ws_messages_total{direction=\"in\"}", n_in);
  counter(out, "todo_host_ws_messages_total{direction=\"out\"}", n_out);
  th_buf_adds(out, "# HELP todo_host_ws_queue_overflows_total Connections closed (1008) because "
                   "their send queue went over WS_SEND_QUEUE_BYTES (all workers).\n"
                   "# TYPE todo_host_ws_queue_overflows_total counter\n");
  counter(out, "todo_host_ws_queue_overflows_total", n_overflows);
  th_buf_adds(out, "# HELP todo_host_ws_closes_total WebSocket closes by code (ours or the peer's; "
                   "1006: no close frame; all workers).\n"
                   "# TYPE todo_host_ws_closes_total counter\n");
  for (size_t i = 0; i < sizeof close_codes / sizeof close_codes[0]; i++) {
    char sample[96];
    if (close_codes[i])
      snprintf(sample, sizeof sample, "todo_host_ws_closes_total{code=\"%d\"}", close_codes[i]);
    else
      snprintf(sample, sizeof sample, "todo_host_ws_closes_total{code=\"other\"}");
    counter(out, sample, n_closes[i]);
  }
}

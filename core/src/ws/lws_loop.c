/* ws/lws_loop.c: the libwebsockets context of this worker, a guest on the worker's
 * libuv loop (LWS_SERVER_OPTION_LIBUV + foreign_loops; the libuv glue is the runtime
 * plugin of Debian's libwebsockets-evlib-uv). libwebsockets does the framing, masking,
 * fragmentation, UTF-8 checks of text frames, close handshake and ping/pong; this file
 * turns its callbacks into calls of conn.c and prim_ws.c.
 *
 * The context listens on no port: sockets reach it from the HTTP server (upgrade.c).
 * It is created on the first accepted handshake and destroyed at the end of shutdown
 * (th_ws_shutdown), before the loop's last run closes the handles it leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/upgrade.h"
#include "ws/ws.h"

static struct lws_context *context;
static struct lws_vhost *vhost;
static int creation_failed;
th_ws_conn *th_ws__adopting;
int th_ws__established;

static th_ws_conn *conn_of(struct lws *wsi) {
  th_ws_conn *c = lws_get_opaque_user_data(wsi);
  if (!c && th_ws__adopting) {
    c = th_ws__adopting;
    lws_set_opaque_user_data(wsi, c);
  }
  return c;
}

/* Whether a text ends inside a multi-byte UTF-8 sequence. libwebsockets checks UTF-8
 * as fragments arrive (VALIDATE_UTF8) and a message that ends mid-sequence, except
 * when its last fragment is empty: then the end is never looked at (RFC 6455 8.1 asks
 * 1007; scripts/ws-conformance case 6.5.2). Everything before is valid by then. */
static int ends_inside_utf8(const unsigned char *s, size_t n) {
  size_t i = n, continuation = 0;
  while (i > 0 && continuation < 3 && (s[i - 1] & 0xC0) == 0x80) {
    i--;
    continuation++;
  }
  if (i == 0) return 0;
  unsigned char lead = s[i - 1];
  size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  return continuation < need;
}

/* Whole messages are reassembled here; over WS_MAX_MESSAGE_BYTES the connection is
 * closed with 1009 before anything reaches Lua. */
static int on_receive(struct lws *wsi, th_ws_conn *c, const char *in, size_t len) {
  if (c->close_code) return 0;
  if (c->rx.len + len > th_ws_cfg.max_message_bytes) {
    static const char why[] = "message too big";
    c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why, sizeof why - 1);
    return -1;
  }
  th_buf_add(&c->rx, in ? in : "", len);
  if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
  int binary = lws_frame_is_binary(wsi);
  if (!binary && ends_inside_utf8((const unsigned char *)c->rx.data, c->rx.len)) {
    static const char why[] = "partial utf8";
    c->close_code = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
    lws_close_reason(wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, (unsigned char *)why, sizeof why - 1);
    return -1;
  }
  th_ws__count_in();
  if (!th_ws__rate_ok(c)) {
    c->rx.len = 0;
    th_ws__on_rate_limited(c);
    return 0;
  }
  /* The handler gets its own copy: another message may arrive while it waits. */
  th_buf msg = c->rx;
  c->rx = (th_buf){0};
  th_ws__on_message(c, msg.data ? msg.data : "", msg.len, binary);
  th_buf_free(&msg);
  return 0;
}

/* Shutdown: th_ws_drain's callback, run once the last connection closed. */
static void (*drained_cb)(void);
static uv_timer_t drained_timer;

static void on_drained(uv_timer_t *t) {
  void (*cb)(void) = drained_cb;
  drained_cb = NULL;
  uv_close((uv_handle_t *)t, NULL);
  if (cb) cb();
}

static void on_closed(th_ws_conn *c) {
  if (c->closed) return;
  c->closed = 1;
  int code = c->close_code ? c->close_code : c->peer_close_code ? c->peer_close_code : 1006;
  if (code == 1006 && c->wsi && lws_get_close_length(c->wsi) >= 2) {
    /* libwebsockets failed it (1002 protocol error, 1007 invalid UTF-8) */
    const unsigned char *p = lws_get_close_payload(c->wsi);
    code = (p[0] << 8) | p[1];
  }
  th_ws__count_close(code);
  c->wsi = NULL;
  th_ws__conn_free(c);
  th_ws__on_close(c, code);
  /* Not from inside this callback: the shutdown it lets go on destroys the context. */
  if (drained_cb && th_ws__count() == 0) uv_timer_start(&drained_timer, on_drained, 0, 0);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
  (void)user;
  th_ws_conn *c;
  switch (reason) {
  case LWS_CALLBACK_ADD_HEADERS: {
    c = conn_of(wsi);
    struct lws_process_html_args *args = in;
    if (c && c->protocol) {
      int n =
          snprintf(args->p, (size_t)args->max_len, "Sec-WebSocket-Protocol: %s\r\n", c->protocol);
      if (n < 0 || n >= args->max_len) return -1;
      args->p += n;
      args->max_len -= n;
    }
    return 0;
  }
  case LWS_CALLBACK_ESTABLISHED:
    c = conn_of(wsi);
    if (!c) return -1;
    c->wsi = wsi;
    if (c == th_ws__adopting) th_ws__established = 1;
    th_ws__index(c);
    th_ws__on_open(c);
    return 0;
  case LWS_CALLBACK_RECEIVE: c = conn_of(wsi); return c ? on_receive(wsi, c, in, len) : -1;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    c = conn_of(wsi);
    return c && c->wsi ? th_ws__writable(c) : -1;
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
    c = conn_of(wsi);
    const unsigned char *p = in;
    int code = len >= 2 ? (p[0] << 8) | p[1] : 1005;
    /* lws 4.1 turns the codes RFC 6455 7.4 forbids into 1002 itself, except a 1-byte
     * payload and codes from 5000 up, which it would echo: fail those here. */
    if (len == 1 || code >= 5000) {
      static const char why[] = "bad close payload";
      lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)why, sizeof why - 1);
      code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
      if (c) c->peer_close_code = code;
      return -1;
    }
    if (c) c->peer_close_code = code;
    return 0;
  }
  case LWS_CALLBACK_CLOSED:
  case LWS_CALLBACK_WSI_DESTROY:
    c = lws_get_opaque_user_data(wsi);
    /* CLOSED, then WSI_DESTROY: the first one finishes c, which may be freed then. */
    lws_set_opaque_user_data(wsi, NULL);
    if (c && c->wsi == wsi) on_closed(c);
    return 0;
  default: return 0;
  }
}

static const struct lws_protocols protocols[] = {
    {"todo-host", callback, 0, 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws logs every adoption with a read buffer at error level ("calling service"):
 * keep its real warnings, drop that noise. */
static void lws_emit(int level, const char *line) {
  if (strstr(line, "calling service") || strstr(line, "deferring handling ah")) return;
  char msg[512];
  snprintf(msg, sizeof msg, "%s", line);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  th_log(NULL, level == LLL_ERR ? "error" : "warn", "libwebsockets: %s", msg);
}

static lws_retry_bo_t retry;

struct lws_vhost *th_ws__vhost(void) {
  if (vhost || creation_failed) return vhost;
  th_ws_read_config();
  lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {th_loop()};
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
  info.protocols = protocols;
  /* VALIDATE_UTF8: without it lws 4.1 passes invalid UTF-8 in text frames and close
   * reasons through (RFC 6455 8.1 asks for 1007; scripts/ws-conformance, case 6). */
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
  info.foreign_loops = loops;
  info.gid = -1;
  info.uid = -1;
  retry.secs_since_valid_ping = (uint16_t)th_ws_cfg.ping_seconds;
  retry.secs_since_valid_hangup = (uint16_t)th_ws_cfg.idle_timeout_seconds;
  info.retry_and_idle_policy = &retry;
  info.pcontext = &context;
  context = lws_create_context(&info);
  if (!context) {
    creation_failed = 1;
    th_log(NULL, "error",
           "ws: cannot create the libwebsockets context (is "
           "libwebsockets-evlib-uv installed?)");
    return NULL;
  }
  vhost = lws_get_vhost_by_name(context, "default");
  if (!vhost) {
    creation_failed = 1;
    th_log(NULL, "error", "ws: libwebsockets has no default vhost");
  }
  return vhost;
}

/* Hand the socket of the request ctx handles to libwebsockets (upgrade.c builds the
 * head it reads first). Returns 0, -2 (not a valid upgrade) or -1 (connection gone). */
int th_ws__adopt(th_ctx *ctx, th_ws_conn *c) {
  th_buf head = {0};
  int fd = th_ws__handover(ctx, &head);
  if (fd < 0) {
    th_buf_free(&head);
    return fd;
  }
  th_ws__adopting = c;
  th_ws__established = 0;
  struct lws *wsi = lws_adopt_socket_vhost_readbuf(vhost, fd, head.data, head.len);
  th_ws__adopting = NULL;
  th_buf_free(&head);
  if (!wsi) return th_ws__established ? 0 : -1; /* lws closed fd (and freed what it had) */
  if (!lws_get_opaque_user_data(wsi)) lws_set_opaque_user_data(wsi, c);
  return 0;
}

int th_ws_open_connections(void) { return th_ws__count(); }

void th_ws_drain(void (*on_all_closed)(void)) {
  if (!th_ws__count()) return;
  drained_cb = on_all_closed;
  uv_timer_init(th_loop(), &drained_timer);
  for (th_ws_conn *c = th_ws__all_first(); c; c = c->all_next)
    th_ws__close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

static uv_timer_t finish_timer;

/* Handles still closing, or that would keep the loop running: an unreferenced one
 * (the metrics publisher's timer) lives until the loop closes and must not hold
 * the destruction back for the 500 ticks (5 s more for every drain with a WebSocket). */
static void count_others(uv_handle_t *h, void *arg) {
  if (h != (uv_handle_t *)&finish_timer && (uv_is_closing(h) || uv_has_ref(h))) ++*(int *)arg;
}

/* The last step of destroying the context frees what lws keeps for the loop and
 * unloads its libuv plugin: only once no handle is left on the loop (lws's own close
 * callbacks live in that plugin). Then lws needs to be called again to get there. */
static void on_finish_tick(uv_timer_t *t) {
  static int ticks;
  int others = 0;
  uv_walk(t->loop, count_others, &others);
  if (context && others == 0)
    for (int i = 0; context && i < 3; i++)
      lws_context_destroy(context);
  if (!context || ++ticks > 500) uv_close((uv_handle_t *)t, NULL);
}

void th_ws_shutdown(void) {
  if (!context) return;
  /* Connections still open are closed now; their on_close handlers do not run (the
   * states are about to close). */
  th_ws_stop_handlers();
  lws_context_destroy(context);
  vhost = NULL;
  /* With a foreign loop the destruction goes on in the loop's close callbacks, and lws
   * must be called again once they are done before it frees the context
   * (lws_context_destroy2/3; `context` turns NULL through info.pcontext). Without this,
   * LeakSanitizer found the whole context left at exit; called too early, it unloads
   * the plugin whose close callbacks are still queued (a crash at exit). */
  if (context) {
    uv_timer_init(th_loop(), &finish_timer);
    uv_timer_start(&finish_timer, on_finish_tick, 10, 10);
  }
}

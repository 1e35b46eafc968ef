/* ws/ws.h: the WebSocket primitive (libwebsockets joined to the worker's libuv loop).
 *
 * Pieces: lws_loop.c (the lws context on this worker's loop, the protocol callback,
 * drain and destroy), upgrade.c (handing an HTTP connection that asked to upgrade over
 * to libwebsockets), conn.c (connections: per-user index, bounded send queues, limits,
 * counters), prim_ws.c (the Lua module "ws.core"; the facade is core/lua/ws.lua).
 * What the rest of the host calls is at the end of this file.
 */
#ifndef TH_WS_H
#define TH_WS_H

#include <libwebsockets.h>
#include <stdint.h>

#include "base/buf.h"
#include "runtime/host_internal.h"
#include "ws/ws_host.h"

typedef struct th_ws_msg {
  struct th_ws_msg *next;
  size_t len;
  unsigned char data[]; /* LWS_PRE bytes of headroom, then len bytes */
} th_ws_msg;

typedef struct th_ws_conn {
  struct lws *wsi;             /* NULL once libwebsockets closed it */
  th_state *state;             /* the bundle state that accepted it (held open: inflight) */
  int endpoint_ref;            /* the manifest's websocket table, registry ref in state->L */
  int object_ref;              /* the Lua object (userdata), registry ref in state->L */
  char *user;                  /* the authenticated user */
  char *protocol;              /* sub-protocol to answer with, or NULL */
  uint64_t id;                 /* per worker */
  th_ws_msg *head, *tail;      /* send queue */
  size_t queued;               /* bytes in the queue */
  th_ws_msg *held, *held_tail; /* sequenced messages held during a replay */
  size_t held_bytes;           /* bytes in held: counted against the same bound */
  uint64_t last_seq;           /* highest sequence number sent */
  int replaying;
  th_buf rx;     /* message being reassembled from fragments */
  double tokens; /* rate limit bucket */
  uint64_t tokens_at_ms;
  int close_code; /* what we close with (0: none asked) */
  char close_reason[64];
  int peer_close_code;
  int closed;                               /* libwebsockets closed the socket */
  struct th_ws_conn *user_next, *user_prev; /* connections of the same user */
  struct th_ws_conn *all_next, *all_prev;   /* every connection of this worker */
} th_ws_conn;

/* Settings (environment, read once). */
typedef struct th_ws_limits {
  size_t send_queue_bytes;
  size_t max_message_bytes;
  double rate_per_second, rate_burst;
  int ping_seconds, idle_timeout_seconds;
  int max_connections;
} th_ws_limits;
extern th_ws_limits th_ws_cfg;
void th_ws_read_config(void);

/* lws_loop.c */
struct lws_vhost *th_ws__vhost(void); /* creates the context on first use; NULL on failure */
extern th_ws_conn *th_ws__adopting;   /* the connection being adopted (callbacks run inside) */
extern int th_ws__established;        /* ESTABLISHED ran for th_ws__adopting */

/* upgrade.c: take over the socket of the HTTP request being handled by ctx. */
int th_ws__adopt(th_ctx *ctx, th_ws_conn *c);

/* conn.c */
th_ws_conn *th_ws__conn_new(th_state *s, const char *user);
void th_ws__conn_free(th_ws_conn *c);
void th_ws__index(th_ws_conn *c);
th_ws_conn *th_ws__user_first(const char *user);
int th_ws__count(void);
/* Queue bytes (copied); over the bound the connection is closed with 1008. */
int th_ws__send(th_ws_conn *c, const char *data, size_t len);
/* Sequenced send: at most once and in order per connection; held while replaying. */
int th_ws__send_seq(th_ws_conn *c, const char *data, size_t len, uint64_t seq);
void th_ws__end_replay(th_ws_conn *c, uint64_t last);
void th_ws__close(th_ws_conn *c, int code, const char *reason);
int th_ws__writable(th_ws_conn *c); /* WRITEABLE callback: 0 or -1 to close */
int th_ws__rate_ok(th_ws_conn *c);
void th_ws__count_in(void);
void th_ws__count_close(int code);
/* th_ws_register: find the counters and gauges in the workers' shared metrics table. */
void th_ws_metrics_init(void);
th_ws_conn *th_ws__all_first(void);

/* prim_ws.c: calling the bundle's handlers */
void th_ws__on_open(th_ws_conn *c);
void th_ws__on_message(th_ws_conn *c, const char *data, size_t len, int binary);
void th_ws__on_close(th_ws_conn *c, int code);
void th_ws__on_rate_limited(th_ws_conn *c);
void th_ws_stop_handlers(void);

#endif

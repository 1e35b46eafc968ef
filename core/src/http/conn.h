/* http/conn.h: one connection of the HTTP server, shared by the files of the
 * server inside http/ (not part of http.h, the interface to the rest of the host):
 *   server.c   listen/accept, reading, timers, closing, dispatch, built-in endpoints
 *   parse.c    the llhttp callbacks that fill a th_request (limits while parsing)
 *   respond.c  response heads, writing with backpressure, the server's own errors */
#ifndef TH_HTTP_CONN_H
#define TH_HTTP_CONN_H

#include <llhttp.h>
#include <uv.h>

#include "base/list.h"
#include "http/http.h"

typedef enum { C_IDLE, C_HEAD, C_BODY, C_HANDLING, C_CLOSING } conn_phase;

struct th_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  llhttp_t parser;
  th_buf in; /* received, not yet parsed bytes start at in_off */
  size_t in_off;
  th_request req;
  th_buf out;  /* response being written */
  th_buf pend; /* answers made while parsing what one read brought: written together */
  conn_phase phase;
  int refs; /* tcp + timer + a running handler */
  int reading;
  int error_status;           /* set by a callback that stops the parser */
  int last_was_value;         /* header callbacks: value seen since the last field */
  int parsing;                /* inside th__conn_continue */
  int version_seen;           /* the request line named a version (else HTTP/0.9) */
  int value_done;             /* header callbacks: the last value is complete */
  const char *error_msg;      /* why error_status, when a check of strict.c said */
  const char *exec_start;     /* what the running llhttp_execute was given */
  const char *value_span_end; /* end of the current header value's last span */
  int send_window;            /* answers wait for the client: its drain rate is being timed */
  uint64_t out_total;         /* bytes handed to the socket (th__conn_write), ever */
  uint64_t send_mark;         /* bytes the client had taken when the window (re)started */
  uint64_t send_mark_ms;      /* and when (uv_now) */
  size_t header_bytes;
  size_t chunk_ext_bytes; /* chunk extensions count against MAX_BODY_BYTES */
  th_list link;           /* in `conns`: live connections, for draining */
  th_list defer_link;     /* in `deferred` while `deferred` (server.c) */
  int deferred;           /* parsed PIPELINE_TURN requests this loop turn: goes on next turn */
};

/* The 503s say when to come back, as lua/web/errors.lua's `unavailable` does. */
#define RETRY_AFTER "Retry-After: 1\r\n"

/* server.c */
void th__conn_close(th_conn *c);
/* Parse what is buffered; stops after one complete request (paused). */
void th__conn_continue(th_conn *c);
/* Run c's timer for ms (its phase says what it waits for); 0 stops it. */
void th__conn_set_timer(th_conn *c, int ms);
/* c waits for its next request with nothing left to send: its keep-alive timer, or
 * while draining DRAIN_IDLE_GRACE_MS (closed at once when that is 0). */
void th__conn_idle(th_conn *c);

/* client_addr.c: the peer's address as text (IPv4-mapped IPv6 as IPv4), "-"
 * when unknown. */
void th__peer_address(uv_tcp_t *tcp, char *out, size_t n);

/* parse.c: fill s with the llhttp callbacks of a connection. */
void th__http_parser_settings(llhttp_settings_t *s);

/* respond.c */
/* Seed the generated request ids and find the series of unmatched requests. */
void th__http_respond_init(void);
void th__http_assign_request_id(th_request *r);
int th__conn_output_blocked(th_conn *c);
/* Answers were left queued: time how fast the client takes them from now on (a
 * window already running goes on). server.c's timer judges it (MIN_SEND_RATE_*). */
void th__conn_send_window(th_conn *c);
void th__conn_write(th_conn *c, const char *data, size_t len, int close_after);
/* Write the answers th__conn_write gathered while c was parsing (th__conn_continue
 * calls it when it stops): pipelined requests cost one write, not one each. */
void th__conn_flush(th_conn *c);
void th__conn_error_with(th_conn *c, int status, const char *code, const char *message,
                         const char *extra_headers);
/* 405 with the Allow header listing what the path accepts. */
void th__conn_error_allow(th_conn *c, const char *allow);

#endif

/* http.h: one HTTP/1.1 request as the server parsed it, and the calls between
 * the network side (http_server.c) and the Lua side (http_lua.c). */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <llhttp.h>
#include <stdint.h>

#include "host_internal.h"
#include "log.h"

typedef struct th_header {
  size_t name_off, name_len, value_off, value_len; /* into th_request.hbuf */
} th_header;

typedef struct th_request {
  const char *method; /* static string from llhttp */
  th_buf url;         /* path?query as received */
  size_t path_len;    /* bytes of url before '?' */
  th_buf hbuf;        /* header names (lower-cased) and values */
  th_header *headers;
  int nheaders, cap_headers;
  th_buf body;
  char request_id[64];
  int keep_alive;
  int head; /* HEAD: send headers only */
  uint64_t start_ns;
} th_request;

typedef struct th_conn th_conn;

/* A response under construction. */
typedef struct th_response {
  int status;
  th_buf headers; /* extra "Name: value\r\n" lines */
  const char *body;
  size_t body_len;
  const char *route; /* pattern for metrics and logs; may be NULL */
} th_response;

/* Find a request header by lower-case name; returns its value or NULL. */
const char *th_request_header(const th_request *r, const char *name, size_t *len);

/* Send a response for the request being handled on conn and continue with the
 * next pipelined request. */
void th_conn_respond(th_conn *conn, th_response *res);

/* Run a matched route's handler for conn's current request (http_lua.c). */
void th_http_dispatch(th_conn *conn, th_request *req, const th_route *route);

/* Answer with the one JSON error shape {"error":{"code":..,"message":..}}. */
void th_conn_error(th_conn *conn, int status, const char *code, const char *message);

/* Server lifecycle (http_server.c). */
int th_server_listen(const char *host, int port, int reuseport);
void th_server_set_generation(th_generation *g);
th_generation *th_server_generation(void);
void th_server_drain(void (*on_drained)(void));
int th_server_draining(void);
int th_server_active_connections(void);
const char *th_status_text(int status);

#endif

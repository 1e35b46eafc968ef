/* http.h: the whole interface of the HTTP side: one HTTP/1.1 request as the
 * server parsed it (server.c), the route table (router.c), and the calls between
 * the network side and the Lua side (lua_bridge.c). */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <llhttp.h>
#include <stdint.h>

#include "base/buf.h"
#include "runtime/host_internal.h"

typedef struct th_metrics_route th_metrics_route;

/* ---- requests and responses (server.c) ---------------------------------- */

typedef struct th_header {
  size_t name_off, name_len, value_off, value_len; /* into th_request.hbuf */
} th_header;

typedef struct th_request {
  const char *method; /* static string from llhttp */
  int method_id;      /* llhttp_method_t, -1 when unknown */
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
  char peer[48]; /* the socket peer's address (client_addr.c), set on accept */
} th_request;

typedef struct th_conn th_conn;

/* A response under construction. */
typedef struct th_response {
  int status;
  th_buf headers; /* extra "Name: value\r\n" lines */
  const char *body;
  size_t body_len;
  const char *route;         /* pattern for logs; may be NULL */
  th_metrics_route *metrics; /* the route's series; NULL: unmatched */
  uint64_t cpu_ns;           /* a handler's Lua time with its share of batches (access log) */
} th_response;

/* Find a request header by lower-case name; returns its value or NULL. */
const char *th_request_header(const th_request *r, const char *name, size_t *len);

/* Send a response for the request being handled on conn and continue with the
 * next pipelined request. */
void th_conn_respond(th_conn *conn, th_response *res);

/* Answer with the one JSON error shape (docs/api.md, "Errors"):
 * {"error":{"code":..,"message":..,"request_id":..}}. */
void th_conn_error(th_conn *conn, int status, const char *code, const char *message);

/* Whether conn closed while its handler ran (its answer is then dropped). */
int th_conn_closed(th_conn *conn);

/* The request being handled on conn. */
th_request *th_conn_request(th_conn *conn);

/* WebSocket (ws/upgrade.c): give the socket of conn to another owner. libuv cannot
 * release a descriptor, so the new owner gets a dup(); bytes read past the request
 * are appended to rest, and conn closes as if the peer had gone (the handler's answer
 * is dropped). Returns the descriptor or a negative errno. */
int th_conn_take_socket(th_conn *conn, th_buf *rest);

/* The handler of conn's request finished: the server may free conn. */
void th_http_dispatch_done(th_conn *conn);

/* ---- routes (router.c) --------------------------------------------------- */

typedef struct th_route {
  char method[8];
  const char *pattern; /* as declared, e.g. /api/tasks/:id (owned by the state) */
  char **segments;     /* split pattern; a segment starting with ':' is a param */
  int nseg;
  int handler_ref; /* registry ref in state->L */
  th_state *state;
  th_metrics_route *metrics; /* this pattern's series, found once */
} th_route;

typedef struct th_router th_router;

/* The routes of every manifest of g, or NULL after printing one line naming the
 * bad route (or a method and path declared twice). */
th_router *th_router_build(th_generation *g);
void th_router_free(th_router *rt);
const th_route *th_route_match(const th_router *rt, const char *method, const char *path,
                               size_t path_len, int *method_mismatch);
/* The methods declared for a path, for the Allow header of a 405. */
const char *th_route_allowed(const th_router *rt, const char *path, size_t len);
/* Capture the :params of a matched route into a new table on L. */
void th_route_push_params(lua_State *L, const th_route *r, const char *path, size_t path_len);
/* Push the percent-decoded bytes of s; '+' becomes a space when plus_as_space. */
void th_push_urldecoded(lua_State *L, const char *s, size_t n, int plus_as_space);

/* ---- the Lua side (lua_bridge.c) ----------------------------------------- */

/* Run a matched route's handler for conn's current request. */
void th_http_dispatch(th_conn *conn, th_request *req, const th_route *route);

/* ---- RFC 9112 checks llhttp 8.1 leaves to the host (strict.c) ----------- */

/* The status a parsed request head must be refused with (400, 417, 501, 505),
 * with *msg saying why, or 0. *expect_continue: the client waits for a 100. */
int th__http_check_head(const th_request *r, int major, int minor, int version_seen,
                        int *expect_continue, const char **msg);
/* An absolute-form target (http://host/path?q) becomes its origin form. */
void th__http_absolute_form(th_buf *url);

/* Append to out the security headers (headers.c) that `given` ("Name: value\r\n"
 * lines a handler set) does not already have. */
void th__http_add_security_headers(th_buf *out, const th_buf *given);

/* ---- client addresses (client_addr.c) ------------------------------------ */

/* Read TRUSTED_PROXIES (addresses and CIDR blocks, comma-separated; NULL: none).
 * Returns -1 after printing one line naming a bad entry. */
int th_http_trusted_proxies_init(const char *list);
/* The client r comes from: its peer, or, when the peer is a trusted proxy, the
 * nearest untrusted address of X-Forwarded-For. */
void th__client_address(const th_request *r, char *out, size_t n);

/* ---- server lifecycle (server.c) ----------------------------------------- */

int th_server_listen(const char *host, int port, int reuseport);
/* The port listened on (the kernel's choice after PORT=0), or -1. */
int th_server_port(void);
/* Serve g from now on (its router is built here; the previous generation is
 * retired). Returns -1, changing nothing, when g's routes are refused. */
int th_server_set_generation(th_generation *g);
/* /readyz asks this whether the database is reachable (main.c sets the pg
 * primitive's probe); without one the database counts as ready. */
void th_server_set_ready_probe(int (*probe)(void));
void th_server_drain(void (*on_drained)(void));
int th_server_draining(void);
int th_server_active_connections(void);

#endif

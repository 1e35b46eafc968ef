/* prim/http.c: "http.core", the non-blocking HTTP client: libcurl's multi
 * interface driven by the host's libuv loop (one uv_poll_t per curl socket,
 * one uv_timer_t for curl's timeouts).
 * Owns: the process-wide multi handle (its connection cache gives keep-alive
 * reuse across every request and bundle of the worker), its timer, the poll
 * handles (freed in their close callbacks), and one th_http_req per transfer
 * in flight. A th_http_req is freed when its transfer completes (after its
 * results were moved into Lua) or by the ctx's cancel hook, never both.
 * Results are built on the state's main thread under lua_pcall, so running out
 * of the bundle's memory while building a large response becomes a `nil, err`
 * for the caller instead of an unprotected error in a libuv callback.
 * `deny_private` (per request) refuses, at connect time, any address in a
 * private, loopback, link-local or reserved range: the check runs on the very
 * address the socket is about to connect to (CURLOPT_OPENSOCKETFUNCTION) and
 * again on the address of a reused connection (CURLOPT_PREREQFUNCTION), so a
 * name that resolves to such an address (DNS rebinding included) is caught
 * whatever it resolved to earlier, and so is every redirect hop. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "prim/primitives.h"
#include "runtime/host.h"
#include "runtime/log.h"

#ifndef TH_VERSION
#define TH_VERSION "dev"
#endif

#define TH_HTTP_DEFAULT_TIMEOUT_MS 30000
#define TH_HTTP_CONNECT_TIMEOUT_MS 10000
#define TH_HTTP_DEFAULT_MAX_BODY (8 * 1024 * 1024)
#define TH_HTTP_MAX_REDIRS 5

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} http_sock;

typedef struct {
  CURL *easy;
  th_ctx *ctx;
  struct curl_slist *headers;
  th_buf body;
  th_buf head;                /* header lines of the last response (redirects, 100-continue) */
  struct curl_slist *resolve; /* test-only "host:port:address" pins (CURLOPT_RESOLVE) */
  size_t max_body;
  int too_large;
  int deny_private;               /* refuse private/reserved addresses at connect time */
  int allow_loopback;             /* ... except loopback (127/8, ::1) */
  char refused[INET6_ADDRSTRLEN]; /* the last address refused, for the error */
  CURLcode result;
  char errbuf[CURL_ERROR_SIZE];
} http_req;

static struct {
  CURLM *multi;
  uv_timer_t timer;
  uv_async_t hold; /* ref'd while transfers are in flight: keeps the loop alive */
  int inflight;
  int ready;
} hc;

static void *xcalloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) abort();
  return p;
}

static void req_free(http_req *r) {
  curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  curl_slist_free_all(r->resolve);
  th_buf_free(&r->body);
  th_buf_free(&r->head);
  free(r);
}

static void inflight_add(int d) {
  hc.inflight += d;
  if (hc.inflight > 0)
    uv_ref((uv_handle_t *)&hc.hold);
  else
    uv_unref((uv_handle_t *)&hc.hold);
}

/* ---- results (run on the state's main thread under lua_pcall) ---- */

static void push_headers(lua_State *L, const th_buf *head) {
  lua_newtable(L);
  const char *p = head->data, *end = head->data + head->len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    /* Status lines and the blank line have no colon before the end. */
    if (colon && colon > p && strncmp(p, "HTTP/", 5)) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *c = p; c < colon; c++)
        luaL_addchar(&name, (char)tolower((unsigned char)*c));
      luaL_pushresult(&name);
      const char *v = colon + 1, *ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {
        /* A repeated header: join the values as one field (RFC 9110 5.3). */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : NULL;
  }
}

/* The transfer failed because deny_private refused its address (not some
 * later failure after another address of the name was connected). */
static int was_refused(const http_req *r) {
  return r->refused[0] &&
         (r->result == CURLE_COULDNT_CONNECT || r->result == CURLE_ABORTED_BY_CALLBACK);
}

static const char *error_code(const http_req *r) {
  if (r->too_large) return "too_large";
  if (was_refused(r)) return "refused";
  switch (r->result) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
  case CURLE_COULDNT_CONNECT: return "connect";
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL: return "bad_url";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE: return "tls";
  case CURLE_TOO_MANY_REDIRECTS: return "redirects";
  default: return "io";
  }
}

/* lua_CFunction: push the results of the request at upvalue-free arg 1. */
static int push_results(lua_State *L) {
  http_req *r = lua_touserdata(L, 1);
  if (r->result != CURLE_OK) {
    lua_pushnil(L);
    if (r->too_large)
      lua_pushliteral(L, "response body too large");
    else if (was_refused(r))
      lua_pushfstring(L,
                      "refused to connect to %s: a private, loopback, link-local or "
                      "reserved address",
                      r->refused);
    else
      lua_pushstring(L, r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
    lua_pushstring(L, error_code(r));
    return 3;
  }
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &r->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_setfield(L, -2, "body");
  return 1;
}

/* The transfer of r is over and r is out of the multi handle: give the
 * results to the waiting coroutine and free r. */
static void finish(http_req *r) {
  th_ctx *ctx = r->ctx;
  lua_State *co = ctx->co;
  int n;
  if (!lua_checkstack(co, 4)) abort();
  lua_rawgeti(co, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *M = lua_tothread(co, -1);
  lua_pop(co, 1);
  if (!lua_checkstack(M, 5)) abort();
  int top = lua_gettop(M);
  lua_pushcfunction(M, push_results);
  lua_pushlightuserdata(M, r);
  if (lua_pcall(M, 1, LUA_MULTRET, 0) == LUA_OK) {
    n = lua_gettop(M) - top;
    lua_xmove(M, co, n);
  } else {
    /* Out of memory while building the response: the error object already
     * exists, so moving it allocates nothing. */
    lua_pushnil(co);
    lua_xmove(M, co, 1);
    n = 2;
  }
  lua_settop(M, top);
  req_free(r);
  inflight_add(-1);
  th_resume(ctx, n);
}

static void check_done(void) {
  CURLMsg *m;
  int left;
  while (hc.multi && (m = curl_multi_info_read(hc.multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode result = m->data.result; /* m is invalid after remove_handle */
    http_req *r = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(hc.multi, easy);
    r->result = result;
    finish(r);
  }
}

/* ---- curl <-> libuv ---- */

static void sock_close_cb(uv_handle_t *h) { free(h->data); }

static void poll_cb(uv_poll_t *p, int status, int events) {
  http_sock *hs = p->data;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(hc.multi, hs->fd, flags, &running);
  check_done();
}

static int socket_fn(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  http_sock *hs = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (hs) {
      uv_poll_stop(&hs->poll);
      uv_close((uv_handle_t *)&hs->poll, sock_close_cb);
      curl_multi_assign(hc.multi, s, NULL);
    }
    return 0;
  }
  if (!hs) {
    hs = xcalloc(sizeof *hs);
    hs->fd = s;
    if (uv_poll_init_socket(th_loop(), &hs->poll, s) != 0) {
      free(hs);
      return -1;
    }
    hs->poll.data = hs;
    /* Liveness is the `hold` handle's job; an idle kept-alive connection
     * must not keep the loop running. */
    uv_unref((uv_handle_t *)&hs->poll);
    curl_multi_assign(hc.multi, s, hs);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&hs->poll, ev, poll_cb);
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  int running;
  curl_multi_socket_action(hc.multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp) {
  if (timeout_ms < 0)
    uv_timer_stop(&hc.timer);
  else
    uv_timer_start(&hc.timer, timer_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

static void hold_cb(uv_async_t *a) {}

static void ensure_ready(void) {
  if (hc.ready) return;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) abort();
  hc.multi = curl_multi_init();
  if (!hc.multi) abort();
  curl_multi_setopt(hc.multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(hc.multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(hc.multi, CURLMOPT_MAXCONNECTS, 64L);
  uv_timer_init(th_loop(), &hc.timer);
  uv_unref((uv_handle_t *)&hc.timer);
  uv_async_init(th_loop(), &hc.hold, hold_cb);
  uv_unref((uv_handle_t *)&hc.hold);
  hc.ready = 1;
}

void th_http_shutdown(void) {
  if (!hc.ready) return;
  /* Closes the cached connections; curl reports each socket as removed, so
   * the poll handles get closed through socket_fn. */
  curl_multi_cleanup(hc.multi);
  hc.multi = NULL;
  /* A uv_walk may have closed them already. */
  if (!uv_is_closing((uv_handle_t *)&hc.timer)) uv_close((uv_handle_t *)&hc.timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&hc.hold)) uv_close((uv_handle_t *)&hc.hold, NULL);
  curl_global_cleanup();
  hc.ready = 0;
}

/* ---- curl callbacks for one transfer ---- */

static size_t write_cb(char *data, size_t size, size_t n, void *ud) {
  http_req *r = ud;
  size_t len = size * n;
  if (r->body.len + len > r->max_body) {
    r->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  th_buf_add(&r->body, data, len);
  return len;
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud) {
  http_req *r = ud;
  size_t len = size * n;
  /* A new status line starts a new response (after a redirect or a 1xx):
   * keep only the headers of the last one. */
  if (len >= 5 && !memcmp(data, "HTTP/", 5)) r->head.len = 0;
  th_buf_add(&r->head, data, len);
  return len;
}

static void cancel_cb(th_ctx *ctx, void *data) {
  http_req *r = data;
  curl_multi_remove_handle(hc.multi, r->easy);
  req_free(r);
  inflight_add(-1);
}

/* ---- deny_private: the address check at connect time ---- */

/* 1 when the IPv4 address a (host order) is in a private, loopback,
 * link-local, shared, reserved or multicast range; loopback (127/8) only
 * when !allow_loopback. */
static int v4_denied(uint32_t a, int allow_loopback) {
  uint8_t o1 = (uint8_t)(a >> 24), o2 = (uint8_t)(a >> 16), o3 = (uint8_t)(a >> 8);
  if (o1 == 127) return !allow_loopback;
  return o1 == 0                                 /* 0.0.0.0/8 "this network" */
         || o1 == 10                             /* 10/8 */
         || (o1 == 100 && (o2 & 0xc0) == 64)     /* 100.64/10 shared (CGNAT) */
         || (o1 == 169 && o2 == 254)             /* 169.254/16 link-local, metadata */
         || (o1 == 172 && (o2 & 0xf0) == 16)     /* 172.16/12 */
         || (o1 == 192 && o2 == 0 && o3 == 0)    /* 192.0.0/24 protocol assignments */
         || (o1 == 192 && o2 == 0 && o3 == 2)    /* 192.0.2/24 documentation */
         || (o1 == 192 && o2 == 168)             /* 192.168/16 */
         || (o1 == 198 && (o2 & 0xfe) == 18)     /* 198.18/15 benchmarking */
         || (o1 == 198 && o2 == 51 && o3 == 100) /* 198.51.100/24 documentation */
         || (o1 == 203 && o2 == 0 && o3 == 113)  /* 203.0.113/24 documentation */
         || o1 >= 224;                           /* multicast, 240/4, broadcast */
}

static uint32_t v4_at(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The same for an IPv6 address (16 bytes); an address that embeds an IPv4
 * one (mapped, compatible, NAT64, 6to4) is judged by that address. */
static int v6_denied(const uint8_t *b, int allow_loopback) {
  static const uint8_t zero[16] = {0};
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
  if (!memcmp(b, zero, 15)) return b[15] == 1 ? !allow_loopback : 1; /* ::1, :: */
  if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12))
    return v4_denied(v4_at(b + 12), allow_loopback);
  if (!memcmp(b, zero, 12)) return 1;                                         /* ::/96 compatible */
  if (b[0] == 0x20 && b[1] == 0x02) return v4_denied(v4_at(b + 2), 0);        /* 2002::/16 6to4 */
  if ((b[0] & 0xfe) == 0xfc) return 1;                                        /* fc00::/7 ULA */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return 1;                        /* fe80::/10 */
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return 1;                        /* fec0::/10 */
  if (b[0] == 0xff) return 1;                                                 /* multicast */
  if (b[0] == 0x01 && b[1] == 0 && !memcmp(b + 2, zero, 6)) return 1;         /* 100::/64 */
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return 1; /* 2001:db8::/32 */
  return 0;
}

/* 1 when the socket address may not be connected to; writes its text to out. */
static int sockaddr_denied(const struct sockaddr *sa, int allow_loopback, char *out, size_t cap) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap);
    return v4_denied(ntohl(in->sin_addr.s_addr), allow_loopback);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)cap);
    return v6_denied(in6->sin6_addr.s6_addr, allow_loopback);
  }
  snprintf(out, cap, "family %d", (int)sa->sa_family);
  return 1; /* unix sockets and anything else: not for a deny_private request */
}

/* CURLOPT_OPENSOCKETFUNCTION: curl is about to connect to `addr` (after
 * resolving, for every address it tries, and for every redirect hop). */
static curl_socket_t opensocket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *addr) {
  http_req *r = ud;
  char text[INET6_ADDRSTRLEN];
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (sockaddr_denied(&addr->addr, r->allow_loopback, text, sizeof text)) {
    memcpy(r->refused, text, sizeof r->refused);
    return CURL_SOCKET_BAD; /* curl tries the next address, if any */
  }
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* CURLOPT_PREREQFUNCTION: a connection (new or reused from the cache) is
 * about to carry the request: check the address it is connected to. */
static int prereq_cb(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  http_req *r = ud;
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
  } a;
  char text[INET6_ADDRSTRLEN];
  (void)local_ip, (void)primary_port, (void)local_port;
  memset(&a, 0, sizeof a);
  if (inet_pton(AF_INET, primary_ip, &a.in.sin_addr) == 1)
    a.sa.sa_family = AF_INET;
  else if (inet_pton(AF_INET6, primary_ip, &a.in6.sin6_addr) == 1)
    a.sa.sa_family = AF_INET6;
  if (sockaddr_denied(&a.sa, r->allow_loopback, text, sizeof text)) {
    snprintf(r->refused, sizeof r->refused, "%s", primary_ip);
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

/* ---- Lua API ---- */

static int valid_token_char(unsigned char c) {
  return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Raise unless the headers table at idx maps header names to string values
 * without CR/LF (header injection). */
static void check_headers(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t nl, vl;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http.request: headers must map names to string values");
    const char *name = lua_tolstring(L, -2, &nl);
    const char *value = lua_tolstring(L, -1, &vl);
    for (size_t i = 0; i < nl; i++)
      if (!valid_token_char((unsigned char)name[i]))
        luaL_error(L, "http.request: invalid header name '%s'", name);
    if (nl == 0) luaL_error(L, "http.request: empty header name");
    for (size_t i = 0; i < vl; i++)
      if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
        luaL_error(L, "http.request: invalid value for header '%s'", name);
    lua_pop(L, 1);
  }
}

/// Start an HTTP request and wait for its response without blocking the
// loop (the calling coroutine is suspended). Use the "http" facade.
// @function request
// @tparam table opts `method` (default "GET"), `url`, `headers` ({name=value}),
//   `body` (string), `timeout` (seconds, default 30), `max_body` (bytes,
//   default 8 MiB), `follow_redirects` (boolean, default false),
//   `deny_private` (boolean: refuse private, loopback, link-local and reserved
//   addresses at connect time), `allow_loopback` (boolean: with deny_private,
//   still allow 127/8 and ::1), `resolve` (array of "host:port:address",
//   CURLOPT_RESOLVE: pins a name to an address; for tests)
// @treturn table {status=, headers={lowercase name = value}, body=}
// @return or nil, message, code ("timeout", "connect", "resolve", "tls",
//   "too_large", "bad_url", "redirects", "refused", "io")
static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "url");
  lua_getfield(L, 1, "method");
  lua_getfield(L, 1, "headers");
  lua_getfield(L, 1, "body");
  lua_getfield(L, 1, "timeout");
  lua_getfield(L, 1, "max_body");
  lua_getfield(L, 1, "follow_redirects");
  lua_getfield(L, 1, "deny_private");
  lua_getfield(L, 1, "allow_loopback");
  lua_getfield(L, 1, "resolve");
  /* 2 url, 3 method, 4 headers, 5 body, 6 timeout, 7 max_body, 8 follow,
   * 9 deny_private, 10 allow_loopback, 11 resolve */
  const char *url = luaL_checkstring(L, 2);
  size_t ulen = lua_rawlen(L, 2);
  luaL_argcheck(L, strlen(url) == ulen, 1, "url contains a NUL byte");
  const char *method = luaL_optstring(L, 3, "GET");
  for (const char *c = method; *c; c++)
    luaL_argcheck(L, isupper((unsigned char)*c), 1, "method must be an uppercase token");
  luaL_argcheck(L, *method, 1, "empty method");
  if (!lua_isnil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    check_headers(L, 4);
  }
  size_t blen = 0;
  const char *body = luaL_optlstring(L, 5, NULL, &blen);
  lua_Number timeout = luaL_optnumber(L, 6, TH_HTTP_DEFAULT_TIMEOUT_MS / 1000.0);
  luaL_argcheck(L, timeout > 0 && timeout <= 3600, 1, "timeout out of range (0..3600 s)");
  lua_Integer max_body = luaL_optinteger(L, 7, TH_HTTP_DEFAULT_MAX_BODY);
  luaL_argcheck(L, max_body >= 0, 1, "max_body must be >= 0");
  int follow = lua_toboolean(L, 8);
  int deny_private = lua_toboolean(L, 9), allow_loopback = lua_toboolean(L, 10);
  lua_Integer nresolve = 0;
  if (!lua_isnil(L, 11)) {
    luaL_checktype(L, 11, LUA_TTABLE);
    nresolve = (lua_Integer)lua_rawlen(L, 11);
    for (lua_Integer i = 1; i <= nresolve; i++) {
      size_t len;
      luaL_argcheck(L, lua_rawgeti(L, 11, i) == LUA_TSTRING, 1, "resolve must hold strings");
      const char *pin = lua_tolstring(L, -1, &len);
      luaL_argcheck(L, strlen(pin) == len && len < 512, 1, "resolve: invalid entry");
      lua_pop(L, 1);
    }
  }
  th_ctx *ctx = th_ctx_check(L, "http.request");

  /* Nothing below raises: r cannot leak. */
  ensure_ready();
  http_req *r = xcalloc(sizeof *r);
  r->ctx = ctx;
  r->max_body = (size_t)max_body;
  CURL *e = r->easy = curl_easy_init();
  if (!e) abort();
  long timeout_ms = (long)(timeout * 1000);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   timeout_ms < TH_HTTP_CONNECT_TIMEOUT_MS ? timeout_ms
                                                           : TH_HTTP_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "todo-host/" TH_VERSION);
  if (deny_private) {
    r->deny_private = 1;
    r->allow_loopback = allow_loopback;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
    /* A proxy from the environment would be the address checked, not the
     * target's: such requests go direct. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
  }
  for (lua_Integer i = 1; i <= nresolve; i++) {
    lua_rawgeti(L, 11, i);
    struct curl_slist *l = curl_slist_append(r->resolve, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!l) abort();
    r->resolve = l;
  }
  if (r->resolve) curl_easy_setopt(e, CURLOPT_RESOLVE, r->resolve);
  if (follow) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)TH_HTTP_MAX_REDIRS);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  }
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (strcmp(method, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else if (!strcmp(method, "HEAD")) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET")) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  /* curl would wait for "100 Continue" before sending larger bodies: one
   * round trip lost on every publish. */
  r->headers = curl_slist_append(NULL, "Expect:");
  if (!lua_isnil(L, 4)) {
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      th_buf line = {0};
      size_t nl, vl;
      const char *name = lua_tolstring(L, -2, &nl);
      const char *value = lua_tolstring(L, -1, &vl);
      th_buf_add(&line, name, nl);
      /* "Name;" is curl's way to send a header with an empty value. */
      th_buf_add(&line, vl ? ": " : ";", vl ? 2 : 1);
      th_buf_add(&line, value, vl);
      struct curl_slist *l = curl_slist_append(r->headers, line.data);
      th_buf_free(&line);
      if (!l) abort();
      r->headers = l;
      lua_pop(L, 1);
    }
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);

  CURLMcode mc = curl_multi_add_handle(hc.multi, e);
  if (mc != CURLM_OK) {
    req_free(r);
    lua_pushnil(L);
    lua_pushstring(L, curl_multi_strerror(mc));
    lua_pushliteral(L, "io");
    return 3;
  }
  inflight_add(1);
  return th_yield(L, cancel_cb, r);
}

int luaopen_th_http_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"request", l_request},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

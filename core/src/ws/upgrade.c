/* ws/upgrade.c: the HTTP side of handing an HTTP connection that asked to upgrade over to
 * libwebsockets, on the same port as the API.
 *
 * The handshake route's handler (core/lua/ws.lua) has checked the origin and the
 * token; here the socket leaves the HTTP server (th_conn_take_socket: libuv cannot
 * release a descriptor, so the server dup()s it and closes its own handle) and is
 * adopted by the lws vhost with a read buffer holding a request head written anew
 * from the parsed one. The new head carries only what the WebSocket handshake needs:
 * no token (libwebsockets caps the Sec-WebSocket-Protocol header at 128 bytes and a
 * JWT is longer) and no extension offers; the sub-protocol we answer with is added
 * to the 101 by the ADD_HEADERS callback (lws_loop.c). Bytes the client sent after
 * its request head follow the new head.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "ws/upgrade.h"

static int key_ok(const char *k, size_t n) {
  if (n < 16 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = k[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '+' || ch == '/' || ch == '='))
      return 0;
  }
  return 1;
}

/* Take the socket of the request ctx is handling, with a new request head (and the
 * bytes read past the old one) in head. Returns the descriptor, -2 (not a valid
 * upgrade: nothing was taken, the caller answers 400) or -1 (the connection is gone). */
int th_ws__handover(th_ctx *ctx, th_buf *head) {
  th_conn *conn = ctx->owner;
  th_request *r = th_conn_request(conn);
  size_t klen = 0, vlen = 0, hlen = 0;
  const char *key = th_request_header(r, "sec-websocket-key", &klen);
  const char *version = th_request_header(r, "sec-websocket-version", &vlen);
  const char *host = th_request_header(r, "host", &hlen);
  if (!key || !key_ok(key, klen) || !version || vlen != 2 || memcmp(version, "13", 2)) return -2;
  if (!host || !hlen || hlen > 255) {
    host = "localhost";
    hlen = 9;
  }
  th_buf_adds(head, "GET ");
  th_buf_add(head, r->url.data, r->path_len);
  th_buf_adds(head, " HTTP/1.1\r\nHost: ");
  th_buf_add(head, host, hlen);
  th_buf_adds(head, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
  th_buf_add(head, key, klen);
  th_buf_adds(head, "\r\nSec-WebSocket-Version: 13\r\n\r\n");
  int fd = th_conn_take_socket(conn, head);
  return fd < 0 ? -1 : fd;
}

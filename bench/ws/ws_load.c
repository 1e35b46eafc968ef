#define _GNU_SOURCE
/* bench/ws/ws_load.c: the WebSocket load generator of `make bench-ws` (scripts/bench-ws),
 * a libwebsockets client (loopback only).
 *
 *   ws_load --port P --tokens FILE --connections N --ready FILE --out FILE [--path /ws]
 *           [--handshake-timeout SECONDS]
 *
 * Opens N connections (connection i authenticates with line i % lines of FILE, through
 * the access_token query parameter), a few hundred at a time. When every connection
 * has its `hello` or failed, writes the number of hellos and of failures to the ready
 * file. A failure is a refused or broken connection, or a 101 that did not come within
 * the handshake timeout (default 60 s). libwebsockets 4.1 gives up on a handshake after
 * the context's timeout_secs (5 s unless set) and drops the connection without any
 * callback but WSI_DESTROY: before that was counted here, a storm on a loaded machine
 * whose slowest handshakes took over 5 s left ws_load waiting for ever for connections
 * it no longer had (docs/benchmarks.md, "never received hello").
 * For every task event it receives it appends "<title> <CLOCK_REALTIME microseconds>"
 * to the out file (flushed on SIGTERM/SIGINT, when it exits). Frames are parsed by
 * libwebsockets; the title is found in the message text, not by a JSON parser (the
 * client must not be the bottleneck it measures).
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int port, n_conns, n_tokens, started, established, hellos, failed, closed, dropped;
static int handshake_timeout = 60;
/* per connection: when it was started, and how far it got */
enum { C_STARTED, C_ESTABLISHED, C_FAILED };
static unsigned char *conn_state;
static long long *conn_t0, *handshake_us;
static int n_handshakes;
static char **tokens;
static const char *path = "/ws", *ready_file, *out_file;
static FILE *out;
static volatile sig_atomic_t stop;
static struct lws_context *context;
static int ready_written;

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void write_ready(void) {
  FILE *f = fopen(ready_file, "w");
  if (!f) return;
  fprintf(f, "%d %d\n", hellos, failed);
  fclose(f);
  ready_written = 1;
}

/* From the callbacks too: the last failure may come from a timer, after which lws_service
 * has nothing left to wake up for. */
static void maybe_ready(void) {
  if (!ready_written && hellos + failed + closed >= n_conns) write_ready();
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
  (void)user;
  int *slot = lws_get_opaque_user_data(wsi);
  switch (reason) {
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    established++;
    if (slot) {
      conn_state[*slot] = C_ESTABLISHED;
      handshake_us[n_handshakes++] = now_us() - conn_t0[*slot];
    }
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE: {
    long long t = now_us();
    const char *s = in;
    if (len > 14 && memmem(s, len, "\"type\":\"hello\"", 14)) {
      hellos++;
      break;
    }
    const char *k = memmem(s, len, "\"title\":\"", 9);
    if (k && memmem(s, len, "\"type\":\"task.", 13)) {
      k += 9;
      const char *e = memchr(k, '"', len - (size_t)(k - s));
      if (e) fprintf(out, "%.*s %lld\n", (int)(e - k), k, t);
    }
    break;
  }
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    failed++;
    if (slot) conn_state[*slot] = C_FAILED;
    break;
  case LWS_CALLBACK_WSI_DESTROY:
    /* gone without a 101 and without CONNECTION_ERROR: lws's handshake timeout */
    if (slot && conn_state[*slot] == C_STARTED) {
      conn_state[*slot] = C_FAILED;
      dropped++;
      failed++;
    }
    break;
  case LWS_CALLBACK_CLIENT_CLOSED:
    closed++;
    break;
  default:
    break;
  }
  maybe_ready();
  return 0;
}

static const struct lws_protocols protocols[] = {
    {"bench", callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_one(int i) {
  static char paths[2][4096];
  static int *slots;
  if (!slots) {
    slots = malloc(sizeof(int) * (size_t)n_conns);
    if (!slots) abort();
  }
  slots[i] = i;
  conn_t0[i] = now_us();
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  snprintf(paths[0], sizeof paths[0], "%s?access_token=%s", path, tokens[i % n_tokens]);
  ci.context = context;
  ci.address = "127.0.0.1";
  ci.port = port;
  ci.path = paths[0];
  ci.host = "127.0.0.1";
  ci.origin = NULL;
  ci.protocol = NULL;
  ci.local_protocol_name = "bench";
  ci.opaque_user_data = &slots[i];
  if (!lws_client_connect_via_info(&ci)) failed++;
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  const char *tokens_file = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--tokens")) tokens_file = argv[i + 1];
    else if (!strcmp(argv[i], "--connections")) n_conns = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--ready")) ready_file = argv[i + 1];
    else if (!strcmp(argv[i], "--out")) out_file = argv[i + 1];
    else if (!strcmp(argv[i], "--path")) path = argv[i + 1];
    else if (!strcmp(argv[i], "--handshake-timeout")) handshake_timeout = atoi(argv[i + 1]);
  }
  if (!port || !tokens_file || !n_conns || !ready_file || !out_file) {
    fprintf(stderr, "usage: ws_load --port P --tokens FILE --connections N --ready FILE --out FILE\n");
    return 2;
  }
  FILE *tf = fopen(tokens_file, "r");
  if (!tf) return 2;
  char line[4096];
  int cap = 0;
  while (fgets(line, sizeof line, tf)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!*line) continue;
    if (n_tokens == cap) {
      cap = cap ? cap * 2 : 64;
      tokens = realloc(tokens, sizeof(char *) * (size_t)cap);
    }
    tokens[n_tokens++] = strdup(line);
  }
  fclose(tf);
  out = fopen(out_file, "w");
  if (!out || !n_tokens) return 2;
  conn_state = calloc((size_t)n_conns, 1);
  conn_t0 = calloc((size_t)n_conns, sizeof *conn_t0);
  handshake_us = calloc((size_t)n_conns, sizeof *handshake_us);
  if (!conn_state || !conn_t0 || !handshake_us) return 1;
  setvbuf(out, NULL, _IOFBF, 1 << 20);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.gid = -1;
  info.uid = -1;
  info.timeout_secs = (unsigned)(handshake_timeout > 0 ? handshake_timeout : 60);
  context = lws_create_context(&info);
  if (!context) return 1;
  while (!stop) {
    /* at most 200 connections in the handshake at once */
    while (started < n_conns && started - hellos - failed < 200)
      connect_one(started++);
    lws_service(context, 0);
    maybe_ready();
  }
  fflush(out);
  fclose(out);
  lws_context_destroy(context);
  fprintf(stderr,
          "ws_load: %d connections, %d established, %d hellos, %d failed (%d without a 101 "
          "within %d s), %d closed",
          n_conns, established, hellos, failed, dropped, handshake_timeout, closed);
  if (n_handshakes) {
    qsort(handshake_us, (size_t)n_handshakes, sizeof *handshake_us, cmp_ll);
    int over5 = 0; /* what libwebsockets' default timeout would have dropped */
    for (int i = 0; i < n_handshakes; i++)
      over5 += handshake_us[i] > 5000000;
    fprintf(stderr, "; handshake p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d over 5 s",
            handshake_us[n_handshakes / 2] / 1000.0,
            handshake_us[(n_handshakes * 99) / 100] / 1000.0,
            handshake_us[n_handshakes - 1] / 1000.0, over5);
  }
  fprintf(stderr, "\n");
  return 0;
}

/* fuzz_http.c: libFuzzer target for the HTTP request path, from raw bytes to the
 * Lua request object and back: the real server (http/server.c, strict.c,
 * lua_bridge.c, router.c) listens in this process on 127.0.0.1, serving
 * core/tests/fuzz/bundle; each input is sent on a new connection in fragments cut
 * where a PRNG seeded by the input's first two bytes says, with the loop run
 * between fragments, so every parser state meets a buffer boundary. Run by
 * `make fuzz` (scripts/fuzz); seeds in core/tests/fuzz/corpus/http/. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "prim/primitives.h"
#include "runtime/config.h"
#include "runtime/log.h"

static int port;

static void pump(int turns) {
  for (int i = 0; i < turns; i++)
    uv_run(th_loop(), UV_RUN_NOWAIT);
}

/* Read and drop what the server answered so far. */
static void drain(int fd) {
  char buf[65536];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
}

static void start_server(void) {
  setenv("LOG_LEVEL", "error", 1);
  setenv("ACCESS_LOG", "0", 1);
  setenv("MAX_BODY_BYTES", "4096", 1);
  setenv("MAX_HEADER_BYTES", "4096", 1);
  if (th_config_from_env() < 0) abort();
  th_log_set_level("error");
  th_host_set_preload(th_primitives_preload);
  th_set_lua_root(TH_SOURCE_DIR "/lua");
  th_loop_init();
  static char dir[] = TH_SOURCE_DIR "/core/tests/fuzz/bundle";
  char *dirs[] = {dir};
  th_generation *g = th_generation_load(dirs, 1);
  if (!g || th_server_listen("127.0.0.1", 0, 0) < 0 || th_server_set_generation(g) < 0) {
    fprintf(stderr, "fuzz_http: cannot start the server\n");
    abort();
  }
  th_generation_start(g);
  port = th_server_port();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!port) start_server();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* A different loopback source address per run (127.1.0.0/16): the 4-tuples of
   * closed connections the kernel still remembers never run out. */
  static uint32_t runs;
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_addr.s_addr = htonl(0x7f010000u | (++runs & 0xffffu));
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
      connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    fprintf(stderr, "fuzz_http: cannot connect: %s\n", strerror(errno));
    abort();
  }
  /* Closed with a reset: tens of thousands of runs leave no TIME_WAIT behind to
   * use up the ephemeral ports. */
  struct linger reset = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  pump(2);
  uint32_t seed = size >= 2 ? (uint32_t)(data[0] | data[1] << 8) | 1u : 1u;
  size_t off = 0;
  while (off < size) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5; /* xorshift32 */
    size_t n = 1 + seed % 97;
    if (n > size - off) n = size - off;
    ssize_t sent = send(fd, data + off, n, MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN) break; /* the server closed: a rejected request */
    if (sent > 0) off += (size_t)sent;
    pump(1);
    drain(fd);
  }
  pump(4);
  drain(fd);
  close(fd);
  pump(4);
  return 0;
}

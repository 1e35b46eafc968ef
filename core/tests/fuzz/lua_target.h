/* lua_target.h: the shared body of the libFuzzer targets that drive a Lua module (RRULE,
 * phrase, chat, task bodies, WebSocket messages). A target defines FUZZ_DRIVER (the
 * name of its driver, core/tests/fuzz/lua/<name>.lua) and FUZZ_BUNDLE (a bundle
 * directory under the source tree whose own modules the driver requires, or ""), then
 * includes this file.
 *
 * One Lua state is made once, as the host makes a bundle's (th_state_new: the sandbox,
 * package.path on lua/ and the bundle searcher, the real primitives preloaded: json, tz,
 * timer, ...), with the host's memory ceiling (BUNDLE_MEMORY). The driver file returns a
 * function; each input is one protected call of it with the input as a string.
 *
 * The oracle, besides ASan/UBSan: the driver calls the module's entry points unprotected
 * and checks their answers follow the convention of CONTRIBUTING.md ("Errors": a result,
 * or nil, message, code; a validation error table; a 4xx response), so ANY Lua error that
 * escapes it ("attempt to index a nil value", "time out of range", "not enough memory",
 * a failed assert of the driver) is a finding: printed with its traceback, then abort()
 * (libFuzzer saves the input). So is an input that takes more CPU time than three times
 * what the host allows a request (CPU_BUDGET_MS, 1000 ms; FUZZ_CPU_MS sets the limit
 * here): ASan's allocator makes Lua's many small allocations slower (a rule expanding
 * 500,000 times took 33 ms in the regular build, 900 ms here), hence the margin; confirm
 * a slow input in the regular build. The memory ceiling (BUNDLE_MEMORY_MB) needs no
 * margin: it counts Lua's own bytes. libFuzzer's -timeout (scripts/fuzz) catches an
 * input that never returns. */
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prim/primitives.h"
#include "runtime/config.h"
#include "runtime/host_internal.h"
#include "runtime/log.h"

#ifndef FUZZ_BEFORE_STATE
#define FUZZ_BEFORE_STATE() ((void)0)
#endif

static lua_State *fuzz_L;

/* Lua coverage for libFuzzer: the Lua VM is not instrumented (Debian's liblua5.4), so
 * without this the fuzzer would see only the C it reaches (JSON, tz) and mutate blind.
 * A line hook counts each (previous line, line) pair of Lua code in libFuzzer's extra
 * counters, as an edge of the C code would be. */
#define FUZZ_LUA_EDGES 65536
__attribute__((
    used, section("__libfuzzer_extra_counters"))) static uint8_t fuzz_lua_edges[FUZZ_LUA_EDGES];
static uintptr_t fuzz_prev_line;

static void fuzz_line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar)) return;
  uintptr_t here = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 2654435761u);
  size_t i = (size_t)((here ^ fuzz_prev_line) % FUZZ_LUA_EDGES);
  if (fuzz_lua_edges[i] < 255) fuzz_lua_edges[i]++;
  fuzz_prev_line = here >> 1;
}
static int fuzz_driver_ref = LUA_NOREF;
static double fuzz_cpu_limit_ms;

static double fuzz_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Message handler: the error with the traceback of where it was raised. */
static int fuzz_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void fuzz_setup(void) {
  setenv("LOG_LEVEL", "error", 0);
  if (th_config_from_env() < 0) abort();
  th_log_set_level("error");
  const char *cpu = getenv("FUZZ_CPU_MS");
  fuzz_cpu_limit_ms = cpu && atof(cpu) > 0 ? atof(cpu) : 3.0 * th_cfg.cpu_budget_ms;
  th_host_set_preload(th_primitives_preload);
  FUZZ_BEFORE_STATE();
  th_set_lua_root(TH_SOURCE_DIR "/lua");
  th_loop_init();
  char err[512] = "";
  th_state *s = th_state_new(TH_STATE_BUNDLE, FUZZ_BUNDLE[0] ? TH_SOURCE_DIR "/" FUZZ_BUNDLE : NULL,
                             th_cfg.bundle_memory * 1024 * 1024, err, sizeof err);
  if (!s) {
    fprintf(stderr, "fuzz_%s: %s\n", FUZZ_DRIVER, err);
    abort();
  }
  fuzz_L = s->L;
  /* The drivers' own helpers (fuzz_check.lua), after lua/ so that none shadows a library. */
  lua_getglobal(fuzz_L, "package");
  lua_getfield(fuzz_L, -1, "path");
  lua_pushfstring(fuzz_L, "%s;" TH_SOURCE_DIR "/core/tests/fuzz/lua/?.lua",
                  lua_tostring(fuzz_L, -1));
  lua_setfield(fuzz_L, -3, "path");
  lua_pop(fuzz_L, 2);
  lua_pushcfunction(fuzz_L, fuzz_traceback);
  if (luaL_loadfilex(fuzz_L, TH_SOURCE_DIR "/core/tests/fuzz/lua/" FUZZ_DRIVER ".lua", "t") !=
          LUA_OK ||
      lua_pcall(fuzz_L, 0, 1, 1) != LUA_OK || !lua_isfunction(fuzz_L, -1)) {
    fprintf(stderr, "fuzz_%s: cannot load the driver: %s\n", FUZZ_DRIVER,
            lua_isstring(fuzz_L, -1) ? lua_tostring(fuzz_L, -1) : "it must return a function");
    abort();
  }
  fuzz_driver_ref = luaL_ref(fuzz_L, LUA_REGISTRYINDEX);
  /* Set after loading: coroutines made later inherit it. */
  const char *lines = getenv("FUZZ_LUA_LINES"); /* 0: no Lua coverage (to measure its cost) */
  if (!lines || strcmp(lines, "0")) lua_sethook(fuzz_L, fuzz_line_hook, LUA_MASKLINE, 0);
  lua_settop(fuzz_L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fuzz_L) fuzz_setup();
  lua_State *L = fuzz_L;
  lua_pushcfunction(L, fuzz_traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_driver_ref);
  lua_pushlstring(L, (const char *)data, size);
  fuzz_prev_line = 0;
  double t0 = fuzz_cpu_ms();
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz_%s: uncaught Lua error (not the module's error convention):\n%s\n",
            FUZZ_DRIVER, lua_tostring(L, -1));
    abort();
  }
  double used = fuzz_cpu_ms() - t0;
  if (used > fuzz_cpu_limit_ms) {
    fprintf(stderr,
            "fuzz_%s: one input took %.0f ms of CPU, over %.0f ms (3 x CPU_BUDGET_MS, what a "
            "request may use, for the sanitizers; FUZZ_CPU_MS)\n",
            FUZZ_DRIVER, used, fuzz_cpu_limit_ms);
    abort();
  }
  lua_settop(L, 0);
  return 0;
}

/* test_fuzz_regressions.c: every crash `make fuzz` found, replayed as a plain test.
 * Each input is placed flush against an inaccessible page, so a read past its end
 * faults here in the regular build too, not only under ASan.
 *   - json/decode.c: a "\u" escape with fewer than four hex digits at the end of a
 *     text stepped past its end and memchr read beyond the buffer (found by
 *     fuzz_jwt through a JWT header; reachable from any JSON request body). */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json/json.h"

#include "check.h"

/* A copy of s ending exactly where a PROT_NONE page begins. */
static const char *at_page_end(const char *s, size_t n) {
  long page = sysconf(_SC_PAGESIZE);
  char *base =
      mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return NULL;
  mprotect(base + page, (size_t)page, PROT_NONE);
  char *p = base + page - n;
  memcpy(p, s, n);
  return p;
}

static void decode_fails(lua_State *L, const char *text) {
  size_t n = strlen(text);
  const char *s = at_page_end(text, n);
  CHECK(s != NULL, "mmap");
  if (!s) return;
  int top = lua_gettop(L);
  int rc = th_json_decode(L, s, n);
  CHECK(rc < 0, "decoding %s should fail", text);
  lua_settop(L, top);
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  decode_fails(L, "\"\\u12\"");
  decode_fails(L, "\"\\u\"");
  decode_fails(L, "\\u");
  decode_fails(L, "{\"a\":\"\\u1");
  decode_fails(L, "[\"\\uZZZZ\\u");
  lua_close(L);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  return failures != 0;
}

/* test_crypto.c: the base64url codec (jwt.h) and the crypto module's known
 * answers, driven from C. Exit status 0 when every check passed. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prim/jwt.h"
#include "prim/primitives.h"

#include "check.h"

static void b64_roundtrip(void) {
  static const struct {
    const char *plain, *enc;
  } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
           {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    size_t n;
    char *e = th_b64url_encode((const unsigned char *)v[i].plain, strlen(v[i].plain), &n);
    CHECK(n == strlen(v[i].enc) && !strcmp(e, v[i].enc), "encode %s -> %s", v[i].plain, e);
    free(e);
    unsigned char *d = th_b64url_decode(v[i].enc, strlen(v[i].enc), &n);
    CHECK(d && n == strlen(v[i].plain) && !memcmp(d, v[i].plain, n), "decode %s", v[i].enc);
    free(d);
  }
  static const char *bad[] = {"Zg==", "Z", "Zh", "Zm9=", "Zm+v", "Zm/v", "Zm 9", "Zm9vY"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unsigned char *d = th_b64url_decode(bad[i], strlen(bad[i]), NULL);
    CHECK(d == NULL, "decode of '%s' should fail", bad[i]);
    free(d);
  }
  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  for (size_t len = 0; len <= 256; len++) {
    size_t n, m;
    char *e = th_b64url_encode(all, len, &n);
    unsigned char *d = th_b64url_decode(e, n, &m);
    CHECK(d && m == len && !memcmp(d, all, len), "round trip of %zu bytes", len);
    free(e);
    free(d);
  }
}

static void lua_checks(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "crypto", luaopen_th_crypto, 1);
  lua_pop(L, 1);
  static const char *cases[] = {
      "return crypto.hex(crypto.sha256('abc')) == "
      "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'",
      "return crypto.hex(crypto.hmac_sha256('Jefe', 'what do ya want for nothing?')) == "
      "'5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'",
      "return #crypto.random_bytes(33) == 33",
      "return crypto.uuid_v4():match('^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$') ~= nil",
      "local a = crypto.uuid_v7() for _ = 1, 10000 do local b = crypto.uuid_v7()"
      " if not (b > a) or not b:match('^%x+%-%x+%-7') then return false end a = b end"
      " return true",
      "return crypto.constant_time_eq('abc', 'abc') and not crypto.constant_time_eq('abc', 'abd')"
      " and not crypto.constant_time_eq('abc', 'ab')",
      "return crypto.base64url_decode('Zg==') == nil and crypto.base64url_encode('\\251\\255') == "
      "'-_8'",
      "return not pcall(crypto.random_bytes, -1)",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int ok = luaL_dostring(L, cases[i]) == LUA_OK && lua_toboolean(L, -1);
    CHECK(ok, "lua case %zu: %s", i, lua_isstring(L, -1) ? lua_tostring(L, -1) : "false");
    lua_settop(L, 0);
  }
  lua_close(L);
}

int main(void) {
  b64_roundtrip();
  lua_checks();
  if (failures)
    fprintf(stderr, "test_crypto: %d failure(s)\n", failures);
  else
    printf("test_crypto: ok\n");
  return failures != 0;
}

/* fuzz_jwt.c: libFuzzer target for JWT parsing and verification (prim/jwt.c through
 * its Lua function jwt.verify). An input with a newline is "header JSON\npayload
 * JSON": it is encoded and signed with the configured dev secret, so the fuzzer
 * reaches the claim checks behind the signature; any other input is verified as a
 * raw token (segments, base64url, JSON, algorithms). Seeds in
 * core/tests/fuzz/corpus/jwt/. */
#include <lauxlib.h>
#include <lualib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "prim/jwt.h"
#include "prim/primitives.h"

static const char secret[] = "fuzz-secret";
static lua_State *L;

static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "jwt", luaopen_th_jwt, 1);
  lua_getfield(L, -1, "configure");
  lua_newtable(L);
  lua_pushstring(L, secret);
  lua_setfield(L, -2, "dev_secret");
  lua_pushliteral(L, "fuzz-aud");
  lua_setfield(L, -2, "audience");
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) abort();
  lua_settop(L, 0);
}

/* base64url(header).base64url(payload).base64url(HMAC-SHA256) */
static void signed_token(th_buf *out, const uint8_t *h, size_t hn, const uint8_t *p, size_t pn) {
  char *a = th_b64url_encode(h, hn, NULL), *b = th_b64url_encode(p, pn, NULL);
  th_buf_adds(out, a);
  th_buf_add(out, ".", 1);
  th_buf_adds(out, b);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out->data, out->len, mac,
       &maclen);
  char *c = th_b64url_encode(mac, maclen, NULL);
  th_buf_add(out, ".", 1);
  th_buf_adds(out, c);
  free(a);
  free(b);
  free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) setup();
  th_buf token = {0};
  const uint8_t *nl = memchr(data, '\n', size);
  if (nl)
    signed_token(&token, data, (size_t)(nl - data), nl + 1, size - (size_t)(nl + 1 - data));
  else
    th_buf_add(&token, (const char *)data, size);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "jwt");
  lua_getfield(L, -1, "verify");
  lua_pushlstring(L, token.data ? token.data : "", token.len);
  lua_pcall(L, 1, 3, 0); /* claims | nil, message, code; wrong input only ever returns */
  lua_settop(L, 0);
  th_buf_free(&token);
  return 0;
}

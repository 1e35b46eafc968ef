/* test_jwt.c: the jwt primitive driven through its Lua API from C. Keys are
 * generated and tokens signed here with OpenSSL's signing calls (a separate
 * code path from the verifier's), then verified through jwt.verify. The
 * busted spec spec/01-unit/jwt_spec.lua covers the same cases with tokens
 * from python3-cryptography. Exit status 0 when every check passed. */
#include <lauxlib.h>
#include <lualib.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prim/jwt.h"
#include "prim/primitives.h"

#include "check.h"

static char *b64(const unsigned char *p, size_t n) { return th_b64url_encode(p, n, NULL); }

static char *b64s(const char *s) { return b64((const unsigned char *)s, strlen(s)); }

/* header.payload (malloc'd) for JSON header and payload texts. */
static char *signing_input(const char *header, const char *payload) {
  char *h = b64s(header), *p = b64s(payload);
  size_t n = strlen(h) + strlen(p) + 2;
  char *out = malloc(n);
  snprintf(out, n, "%s.%s", h, p);
  free(h);
  free(p);
  return out;
}

static char *join_sig(char *input, const unsigned char *sig, size_t siglen) {
  char *s = b64(sig, siglen);
  size_t n = strlen(input) + strlen(s) + 2;
  char *out = malloc(n);
  snprintf(out, n, "%s.%s", input, s);
  free(s);
  free(input);
  return out;
}

/* Sign with pkey; md NULL for Ed25519. ES256 signatures are converted from
 * DER to the JWS r||s form when raw is set. */
static char *sign_token(const char *header, const char *payload, EVP_PKEY *pkey, const EVP_MD *md,
                        int es_raw) {
  char *in = signing_input(header, payload);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(c, NULL, md, NULL, pkey);
  EVP_DigestSign(c, NULL, &len, (unsigned char *)in, strlen(in));
  unsigned char *sig = malloc(len);
  EVP_DigestSign(c, sig, &len, (unsigned char *)in, strlen(in));
  EVP_MD_CTX_free(c);
  if (es_raw) {
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    memcpy(sig, raw, 64);
    len = 64;
  }
  char *tok = join_sig(in, sig, len);
  free(sig);
  return tok;
}

static char *hs_token(const char *header, const char *payload, const void *key, size_t klen) {
  char *in = signing_input(header, payload);
  unsigned char mac[32];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)in, strlen(in), mac, &maclen);
  return join_sig(in, mac, maclen);
}

static char *bn_b64(EVP_PKEY *pkey, const char *param) {
  BIGNUM *bn = NULL;
  EVP_PKEY_get_bn_param(pkey, param, &bn);
  int n = BN_num_bytes(bn);
  unsigned char *buf = malloc((size_t)n);
  BN_bn2bin(bn, buf);
  char *s = b64(buf, (size_t)n);
  free(buf);
  BN_free(bn);
  return s;
}

static char *ec_coord(EVP_PKEY *pkey, const char *param) {
  BIGNUM *bn = NULL;
  EVP_PKEY_get_bn_param(pkey, param, &bn);
  unsigned char buf[32];
  BN_bn2binpad(bn, buf, 32);
  BN_free(bn);
  return b64(buf, 32);
}

/* Call jwt.verify(token): returns the code ("ok" on success) in a static
 * buffer; on success also checks sub == "u1". */
static const char *verify(lua_State *L, const char *token) {
  static char code[64];
  int top = lua_gettop(L);
  lua_getglobal(L, "jwt");
  lua_getfield(L, -1, "verify");
  lua_pushstring(L, token);
  if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
    snprintf(code, sizeof code, "raised: %.40s", lua_tostring(L, -1));
  } else if (lua_istable(L, -3)) {
    lua_getfield(L, -3, "sub");
    const char *sub = lua_tostring(L, -1);
    snprintf(code, sizeof code, "%s", sub && !strcmp(sub, "u1") ? "ok" : "wrong sub");
  } else {
    snprintf(code, sizeof code, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  }
  lua_settop(L, top);
  return code;
}

static int run_lua(lua_State *L, const char *code) {
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  int ok = lua_toboolean(L, -1);
  lua_settop(L, 0);
  return ok;
}

#define EXPECT(tok, want)                                                                          \
  do {                                                                                             \
    const char *got_ = verify(L, tok);                                                             \
    CHECK(!strcmp(got_, want), "%s: expected %s, got %s", #tok, want, got_);                       \
  } while (0)

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "jwt", luaopen_th_jwt, 1);
  lua_pop(L, 1);

  EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  EVP_PKEY *ed2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  CHECK(ed && ed2 && rsa && ec, "key generation");

  unsigned char edx[32];
  size_t edxlen = sizeof edx;
  EVP_PKEY_get_raw_public_key(ed, edx, &edxlen);
  char *x = b64(edx, 32), *n = bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N),
       *e = bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E), *ecx = ec_coord(ec, OSSL_PKEY_PARAM_EC_PUB_X),
       *ecy = ec_coord(ec, OSSL_PKEY_PARAM_EC_PUB_Y);
  char jwks[4096];
  snprintf(jwks, sizeof jwks,
           "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"EdDSA\",\"kid\":\"ed\",\"x\":"
           "\"%s\"},"
           "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"n\":\"%s\",\"e\":\"%s\"},"
           "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\",\"x\":\"%s\",\"y\":\"%s\"}]}",
           x, n, e, ecx, ecy);

  long now = (long)time(NULL);
  char good[256], expired[256], future[256], wrong_iss[256], aud_list[256];
  snprintf(good, sizeof good, "{\"sub\":\"u1\",\"iss\":\"I\",\"aud\":\"A\",\"exp\":%ld}",
           now + 300);
  snprintf(expired, sizeof expired, "{\"sub\":\"u1\",\"iss\":\"I\",\"aud\":\"A\",\"exp\":%ld}",
           now - 300);
  snprintf(future, sizeof future,
           "{\"sub\":\"u1\",\"iss\":\"I\",\"aud\":\"A\",\"nbf\":%ld,\"exp\":%ld}", now + 300,
           now + 600);
  snprintf(wrong_iss, sizeof wrong_iss, "{\"sub\":\"u1\",\"iss\":\"X\",\"aud\":\"A\",\"exp\":%ld}",
           now + 300);
  snprintf(aud_list, sizeof aud_list,
           "{\"sub\":\"u1\",\"iss\":\"I\",\"aud\":[\"B\",\"A\"],\"exp\":%ld}", now + 300);

  char *t_ed = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", good, ed, NULL, 0);
  char *t_rs = sign_token("{\"alg\":\"RS256\",\"kid\":\"rsa\"}", good, rsa, EVP_sha256(), 0);
  char *t_es = sign_token("{\"alg\":\"ES256\",\"kid\":\"ec\"}", good, ec, EVP_sha256(), 1);
  char *t_es_der = sign_token("{\"alg\":\"ES256\",\"kid\":\"ec\"}", good, ec, EVP_sha256(), 0);
  char *t_aud = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", aud_list, ed, NULL, 0);
  char *t_exp = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", expired, ed, NULL, 0);
  char *t_nbf = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", future, ed, NULL, 0);
  char *t_iss = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", wrong_iss, ed, NULL, 0);
  char *t_wrong = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", good, ed2, NULL, 0);
  char *t_kid = sign_token("{\"alg\":\"EdDSA\",\"kid\":\"zz\"}", good, ed2, NULL, 0);
  char *t_mismatch = sign_token("{\"alg\":\"RS256\",\"kid\":\"ed\"}", good, rsa, EVP_sha256(), 0);
  char *t_none = join_sig(signing_input("{\"alg\":\"none\"}", good), NULL, 0);
  char *t_confused = hs_token("{\"alg\":\"HS256\",\"kid\":\"ed\"}", good, edx, 32);
  char *t_hs_dev = th_jwt_mint_hs256("dev-secret", "u1", 300, "I", "A");
  char *t_hs_exp = th_jwt_mint_hs256("dev-secret", "u1", -300, "I", "A");

  lua_getglobal(L, "jwt");
  lua_getfield(L, -1, "configure");
  lua_newtable(L);
  lua_pushstring(L, jwks);
  lua_setfield(L, -2, "jwks");
  lua_pushliteral(L, "I");
  lua_setfield(L, -2, "issuer");
  lua_pushliteral(L, "A");
  lua_setfield(L, -2, "audience");
  CHECK(lua_pcall(L, 1, 2, 0) == LUA_OK && lua_toboolean(L, -2), "configure with JWKS: %s",
        lua_tostring(L, -1));
  lua_settop(L, 0);

  EXPECT(t_ed, "ok");
  EXPECT(t_rs, "ok");
  EXPECT(t_es, "ok");
  EXPECT(t_aud, "ok");
  EXPECT(t_es_der, "bad_signature");
  EXPECT(t_exp, "expired");
  EXPECT(t_nbf, "not_yet_valid");
  EXPECT(t_iss, "bad_issuer");
  EXPECT(t_wrong, "bad_signature");
  EXPECT(t_kid, "unknown_kid");
  EXPECT(t_mismatch, "alg_not_allowed");
  EXPECT(t_none, "alg_not_allowed");
  EXPECT(t_confused, "alg_not_allowed");
  EXPECT(t_hs_dev, "alg_not_allowed");
  EXPECT("", "malformed");
  EXPECT("a.b", "malformed");
  EXPECT("a.b.c.d", "malformed");
  EXPECT("!!.??.**", "malformed");
  CHECK(run_lua(L, "local k = jwt.kids() return #k == 3 and k[1] == 'ed' and k[3] == 'ec'"),
        "kids");

  /* Dev secret only. */
  CHECK(run_lua(L, "return jwt.configure{dev_secret = 'dev-secret', issuer = 'I', audience = 'A'}"),
        "configure dev secret");
  EXPECT(t_hs_dev, "ok");
  EXPECT(t_hs_exp, "expired");
  EXPECT(t_ed, "no_keys");
  CHECK(run_lua(L, "local t = jwt.sign_hs256({sub = 'u1', exp = os.time() + 60,"
                   " iss = 'I', aud = 'A'}, 'dev-secret')"
                   " return jwt.verify(t).sub == 'u1'"),
        "sign_hs256 round trip");
  CHECK(run_lua(L, "return jwt.set_jwks('{\"keys\":[]}') == nil"), "empty JWKS refused");
  CHECK(run_lua(L, "return not pcall(jwt.configure, {skew = 'x'})"), "bad skew raises");

  free(x), free(n), free(e), free(ecx), free(ecy);
  char *toks[] = {t_ed,    t_rs,  t_es,       t_es_der, t_aud,      t_exp,    t_nbf,   t_iss,
                  t_wrong, t_kid, t_mismatch, t_none,   t_confused, t_hs_dev, t_hs_exp};
  for (size_t i = 0; i < sizeof toks / sizeof *toks; i++)
    free(toks[i]);
  EVP_PKEY_free(ed), EVP_PKEY_free(ed2), EVP_PKEY_free(rsa), EVP_PKEY_free(ec);
  th_jwt_reset();
  lua_close(L);
  if (failures)
    fprintf(stderr, "test_jwt: %d failure(s)\n", failures);
  else
    printf("test_jwt: ok\n");
  return failures != 0;
}

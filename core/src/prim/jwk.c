/* prim/jwk.c: JSON Web Keys for the "jwt" primitive (prim/jwt.c): a JWKS
 * document to an array of OpenSSL keys (EdDSA, RS256, ES256), each with its kid
 * and the algorithm its type allows. Owns nothing past a call: the array is
 * returned to the caller, who frees it with th__jwk_free_keys. */
#include <lauxlib.h>
#include <lua.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json/json.h"
#include "prim/jwk.h"
#include "prim/jwt.h"

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

jwt_alg th__jwk_alg(const char *s) {
  if (!strcmp(s, "EdDSA") || !strcmp(s, "Ed25519")) return ALG_EDDSA;
  if (!strcmp(s, "RS256")) return ALG_RS256;
  if (!strcmp(s, "ES256")) return ALG_ES256;
  if (!strcmp(s, "HS256")) return ALG_HS256;
  if (!strcasecmp(s, "none")) return ALG_NONE;
  return ALG_UNKNOWN;
}

void th__jwk_free_keys(jwt_key *keys, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(keys[i].kid);
    EVP_PKEY_free(keys[i].pkey);
  }
  free(keys);
}

/* Decode the base64url string field `name` of the table at idx. Returns a
 * malloc'd buffer, or NULL when absent or invalid. */
static unsigned char *jwk_bytes(lua_State *L, int idx, const char *name, size_t *len) {
  unsigned char *out = NULL;
  if (lua_getfield(L, idx, name) == LUA_TSTRING) {
    size_t slen;
    const char *s = lua_tolstring(L, -1, &slen);
    out = th_b64url_decode(s, slen, len);
  }
  lua_pop(L, 1);
  return out;
}

/* The string field `name` of the table at idx, or NULL (valid until the table
 * is collected: the table holds the string). Shared with jwt.c via jwk.h. */
const char *th__jwk_field_str(lua_State *L, int idx, const char *name) {
  const char *s = NULL;
  if (lua_getfield(L, idx, name) == LUA_TSTRING) s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params) {
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (pctx && EVP_PKEY_fromdata_init(pctx) == 1)
    if (EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = NULL;
  EVP_PKEY_CTX_free(pctx);
  return pkey;
}

static EVP_PKEY *rsa_key(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen) {
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL);
  BIGNUM *bn_e = BN_bin2bn(e, (int)elen, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
      (params = OSSL_PARAM_BLD_to_param(bld)))
    pkey = pkey_fromdata("RSA", params);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  /* Short RSA keys are breakable: refuse them rather than trust them. */
  if (pkey && EVP_PKEY_get_bits(pkey) < 2048) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  return pkey;
}

static EVP_PKEY *p256_key(const unsigned char *x, const unsigned char *y) {
  unsigned char pt[65];
  pt[0] = 0x04; /* uncompressed point */
  memcpy(pt + 1, x, 32);
  memcpy(pt + 33, y, 32);
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY *pkey = pkey_fromdata("EC", params);
  /* The point must be on the curve (invalid-curve attacks). */
  if (pkey) {
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = c && EVP_PKEY_public_check(c) == 1;
    EVP_PKEY_CTX_free(c);
    if (!ok) {
      EVP_PKEY_free(pkey);
      pkey = NULL;
    }
  }
  return pkey;
}

/* Build a key from the JWK table at the top of the stack. Returns 1 and fills
 * *out, or 0 when the JWK is not one we verify with (skipped). */
static int jwk_to_key(lua_State *L, jwt_key *out) {
  int t = lua_gettop(L);
  const char *kty = th__jwk_field_str(L, t, "kty");
  const char *alg = th__jwk_field_str(L, t, "alg");
  const char *use = th__jwk_field_str(L, t, "use");
  const char *crv = th__jwk_field_str(L, t, "crv");
  const char *kid = th__jwk_field_str(L, t, "kid");
  if (!kty || (use && strcmp(use, "sig"))) return 0;
  jwt_alg want = alg ? th__jwk_alg(alg) : ALG_UNKNOWN;
  EVP_PKEY *pkey = NULL;
  jwt_alg kalg = ALG_UNKNOWN;
  if (!strcmp(kty, "OKP") && crv && !strcmp(crv, "Ed25519")) {
    size_t xl = 0;
    unsigned char *x = jwk_bytes(L, t, "x", &xl);
    if (x && xl == 32) pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
    free(x);
    kalg = ALG_EDDSA;
  } else if (!strcmp(kty, "RSA")) {
    size_t nl = 0, el = 0;
    unsigned char *n = jwk_bytes(L, t, "n", &nl);
    unsigned char *e = jwk_bytes(L, t, "e", &el);
    if (n && e && nl > 0 && el > 0 && el <= 8) pkey = rsa_key(n, nl, e, el);
    free(n);
    free(e);
    kalg = ALG_RS256;
  } else if (!strcmp(kty, "EC") && crv && !strcmp(crv, "P-256")) {
    size_t xl = 0, yl = 0;
    unsigned char *x = jwk_bytes(L, t, "x", &xl);
    unsigned char *y = jwk_bytes(L, t, "y", &yl);
    if (x && y && xl == 32 && yl == 32) pkey = p256_key(x, y);
    free(x);
    free(y);
    kalg = ALG_ES256;
  }
  /* A JWK that names another algorithm for this key type (PS256 on an RSA
   * key, say) is not used: we would verify with a scheme it was not made for. */
  if (!pkey || (alg && want != kalg)) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return 0;
  }
  out->kid = kid ? xstrdup(kid) : NULL;
  out->alg = kalg;
  out->pkey = pkey;
  return 1;
}

/* Parse a JWKS JSON document into a new key array (decode fn at upvalue 1).
 * Returns NULL and pushes an error message on failure, else returns the
 * array (count in *n) and leaves the stack as it was. */
jwt_key *th__jwk_parse_set(lua_State *L, const char *json, size_t len, size_t *n) {
  int top = lua_gettop(L);
  if (th_json_decode(L, json, len) < 0 || !lua_istable(L, -1)) {
    lua_settop(L, top);
    lua_pushliteral(L, "JWKS is not valid JSON");
    return NULL;
  }
  if (lua_getfield(L, -1, "keys") != LUA_TTABLE) {
    lua_settop(L, top);
    lua_pushliteral(L, "JWKS has no keys array");
    return NULL;
  }
  lua_Integer count = luaL_len(L, -1);
  if (count > TH_JWT_MAX_KEYS) {
    lua_settop(L, top);
    lua_pushliteral(L, "JWKS has too many keys");
    return NULL;
  }
  jwt_key *keys = xmalloc(sizeof *keys * (size_t)(count > 0 ? count : 1));
  size_t used = 0;
  for (lua_Integer i = 1; i <= count; i++) {
    if (lua_geti(L, -1, i) == LUA_TTABLE && jwk_to_key(L, &keys[used])) used++;
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (used == 0) {
    free(keys);
    lua_pushliteral(L, "JWKS has no usable key (EdDSA, RS256, ES256)");
    return NULL;
  }
  *n = used;
  return keys;
}

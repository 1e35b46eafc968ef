/* prim/jwt.c: the "jwt" module: JWT verification on OpenSSL against a
 * process-wide key set (one per worker process, shared by every bundle state),
 * plus dev HS256 signing.
 * Owns: the key set (kid, algorithm, EVP_PKEY) and the verification settings
 * (dev secret, issuer, audiences, clock skew), all in `ks` below (the keys
 * themselves are parsed by prim/jwk.c); replaced
 * whole by configure / set_jwks and freed by th_jwt_reset.
 * JSON goes through the host's one decoder and encoder (th_json_decode /
 * th_json_encode), so the signature work stays in C and the claims come back
 * as an ordinary Lua table with integer times.
 * Memory: decoded segments are moved into Lua strings at once, so a Lua error
 * (out of memory) can never leak a C buffer; OpenSSL objects live only inside
 * one C function, or in the key set. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "prim/jwk.h"
#include "prim/jwt.h"
#include "prim/primitives.h"
#include "runtime/host.h"
#include "runtime/log.h"

#define TH_JWT_MAX_TOKEN 16384 /* longer tokens are refused before any work */
#define TH_JWT_MAX_SKEW 3600

static struct {
  jwt_key *keys;
  size_t nkeys;
  unsigned char *dev_secret; /* NULL: HS256 is never accepted */
  size_t dev_secret_len;
  char *issuer;     /* NULL: iss is not checked */
  char **audiences; /* NULL: aud is not checked */
  size_t naud;
  long skew;
  int require_exp;
  int configured;
  /* JWKS refetch coordination between the bundle states of this process
   * (monotonic seconds; see fetch_begin). Survives th_jwt_reset. */
  double last_fetch, fetch_started;
  int fetching;
} ks = {.skew = 60, .require_exp = 1, .last_fetch = -1e9};

/* A fetch that never reported its end (its coroutine was torn down) stops
 * counting as in progress after this many seconds. */
#define TH_JWT_FETCH_STALE 10.0

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

static void free_audiences(void) {
  for (size_t i = 0; i < ks.naud; i++)
    free(ks.audiences[i]);
  free(ks.audiences);
  ks.audiences = NULL;
  ks.naud = 0;
}

void th_jwt_reset(void) {
  th__jwk_free_keys(ks.keys, ks.nkeys);
  ks.keys = NULL;
  ks.nkeys = 0;
  if (ks.dev_secret) OPENSSL_cleanse(ks.dev_secret, ks.dev_secret_len);
  free(ks.dev_secret);
  ks.dev_secret = NULL;
  ks.dev_secret_len = 0;
  free(ks.issuer);
  ks.issuer = NULL;
  free_audiences();
  ks.skew = 60;
  ks.require_exp = 1;
  ks.configured = 0;
}

/* ---- HS256 signing (dev tokens) ---- */

/* Sign payload (JSON text) into a compact JWS. Returns malloc'd text. */
static char *hs256_token(const unsigned char *secret, size_t slen, const char *payload,
                         size_t plen) {
  static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  th_buf b = {0};
  size_t n;
  char *h = th_b64url_encode((const unsigned char *)header, sizeof header - 1, &n);
  th_buf_add(&b, h, n);
  free(h);
  th_buf_add(&b, ".", 1);
  char *p = th_b64url_encode((const unsigned char *)payload, plen, &n);
  th_buf_add(&b, p, n);
  free(p);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_sha256(), slen ? (const void *)secret : "", (int)slen,
            (const unsigned char *)b.data, b.len, mac, &maclen))
    abort(); /* HMAC-SHA-256 cannot fail short of memory exhaustion */
  char *s = th_b64url_encode(mac, maclen, &n);
  th_buf_add(&b, ".", 1);
  th_buf_add(&b, s, n);
  free(s);
  return b.data;
}

char *th_jwt_mint_hs256(const char *secret, const char *sub, long ttl_seconds, const char *issuer,
                        const char *audience) {
  long now = (long)time(NULL);
  th_buf p = {0};
  th_buf_adds(&p, "{\"sub\":\"");
  th_buf_json_escape(&p, sub, strlen(sub));
  th_buf_printf(&p, "\",\"iat\":%ld,\"exp\":%ld", now, now + ttl_seconds);
  if (issuer) {
    th_buf_adds(&p, ",\"iss\":\"");
    th_buf_json_escape(&p, issuer, strlen(issuer));
    th_buf_adds(&p, "\"");
  }
  if (audience) {
    th_buf_adds(&p, ",\"aud\":\"");
    th_buf_json_escape(&p, audience, strlen(audience));
    th_buf_adds(&p, "\"");
  }
  th_buf_adds(&p, "}");
  char *tok = hs256_token((const unsigned char *)secret, strlen(secret), p.data, p.len);
  th_buf_free(&p);
  return tok;
}

/* ---- verification ---- */

static const jwt_key *find_key(const char *kid) {
  if (!kid) return ks.nkeys == 1 ? &ks.keys[0] : NULL;
  for (size_t i = 0; i < ks.nkeys; i++)
    if (ks.keys[i].kid && !strcmp(ks.keys[i].kid, kid)) return &ks.keys[i];
  return NULL;
}

/* Verify sig over input with key. Returns 1 when the signature is valid. */
static int verify_sig(const jwt_key *key, const unsigned char *in, size_t inlen,
                      const unsigned char *sig, size_t siglen) {
  int ok = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) abort();
  switch (key->alg) {
  case ALG_EDDSA:
    ok = siglen == 64 && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pkey) == 1 &&
         EVP_DigestVerify(md, sig, siglen, in, inlen) == 1;
    break;
  case ALG_RS256:
    ok = siglen == (size_t)EVP_PKEY_get_size(key->pkey) &&
         EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
         EVP_DigestVerify(md, sig, siglen, in, inlen) == 1;
    break;
  case ALG_ES256: {
    /* JWS carries r||s (32 bytes each); OpenSSL wants a DER ECDSA-Sig-Value. */
    if (siglen != 64) break;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s) abort();
    ECDSA_SIG_set0(es, r, s); /* es owns r and s now */
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    ok = derlen > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
         EVP_DigestVerify(md, der, (size_t)derlen, in, inlen) == 1;
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    break;
  }
  default: break;
  }
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  return ok;
}

static int verify_hs256(const unsigned char *in, size_t inlen, const unsigned char *sig,
                        size_t siglen) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_sha256(), ks.dev_secret, (int)ks.dev_secret_len, in, inlen, mac, &maclen)) return 0;
  return siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
}

static int fail(lua_State *L, const char *msg, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  return 3;
}

/* Decode one base64url segment and push it as a Lua string. Returns 0 when
 * the segment is not valid base64url (nothing pushed). */
static int push_segment(lua_State *L, const char *s, size_t len) {
  size_t n;
  unsigned char *b = th_b64url_decode(s, len, &n);
  if (!b) return 0;
  lua_pushlstring(L, (const char *)b, n);
  free(b);
  return 1;
}

/* Decode the JSON object text at stack index idx (the host's decoder keeps
 * integers as integers and refuses NaN/Infinity); pushes the table and returns 1, or pushes nothing
 * and returns 0 when it is not a JSON object. */
static int push_json_object(lua_State *L, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  size_t i = 0;
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
    i++;
  /* A JSON array also decodes to a table: check the text itself. */
  if (i == len || s[i] != '{') return 0;
  if (th_json_decode(L, s, len) < 0 || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Read the numeric claim `name` of the table at idx. Returns 1 and sets *v,
 * 0 when absent, -1 when present but not a number. */
static int num_claim(lua_State *L, int idx, const char *name, double *v) {
  int t = lua_getfield(L, idx, name);
  int r = t == LUA_TNIL ? 0 : t == LUA_TNUMBER ? 1 : -1;
  if (r == 1) *v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return r == 1 && !isfinite(*v) ? -1 : r;
}

static int audience_allowed(const char *s) {
  for (size_t i = 0; i < ks.naud; i++)
    if (!strcmp(ks.audiences[i], s)) return 1;
  return 0;
}

/* Check exp, nbf, iat, iss, aud of the claims table at idx. Returns NULL
 * when they pass, else the error code and *msg. */
static const char *check_claims(lua_State *L, int idx, const char **msg) {
  double now = (double)time(NULL), v, skew = (double)ks.skew;
  int r = num_claim(L, idx, "exp", &v);
  if (r < 0 || (r == 0 && ks.require_exp)) {
    *msg = r < 0 ? "exp is not a number" : "token has no exp";
    return "malformed";
  }
  if (r == 1 && now >= v + skew) {
    *msg = "token expired";
    return "expired";
  }
  if ((r = num_claim(L, idx, "nbf", &v)) < 0) {
    *msg = "nbf is not a number";
    return "malformed";
  }
  if (r == 1 && now + skew < v) {
    *msg = "token not yet valid";
    return "not_yet_valid";
  }
  if ((r = num_claim(L, idx, "iat", &v)) < 0) {
    *msg = "iat is not a number";
    return "malformed";
  }
  if (r == 1 && now + skew < v) {
    *msg = "token issued in the future";
    return "not_yet_valid";
  }
  if (ks.issuer) {
    const char *iss = th__jwk_field_str(L, idx, "iss");
    if (!iss || strcmp(iss, ks.issuer)) {
      *msg = "wrong issuer";
      return "bad_issuer";
    }
  }
  if (ks.audiences) {
    int ok = 0;
    int t = lua_getfield(L, idx, "aud");
    if (t == LUA_TSTRING) {
      ok = audience_allowed(lua_tostring(L, -1));
    } else if (t == LUA_TTABLE) {
      lua_Integer n = luaL_len(L, -1);
      for (lua_Integer i = 1; i <= n && !ok; i++) {
        if (lua_geti(L, -1, i) == LUA_TSTRING) ok = audience_allowed(lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    if (!ok) {
      *msg = "wrong audience";
      return "bad_audience";
    }
  }
  return NULL;
}

/// Verify a compact JWS token: structure, algorithm (decided by the key held
// for its kid), signature, then exp / nbf / iat with the configured skew, iss
// and aud when configured.
// @function verify
// @tparam string token
// @treturn table the claims (decoded payload; integral numbers as integers)
// @return or nil, message, code where code is one of "malformed",
//   "unknown_kid", "bad_signature", "expired", "not_yet_valid", "bad_issuer",
//   "bad_audience", "alg_not_allowed", "no_keys"
static int l_verify(lua_State *L) {
  size_t len;
  const char *tok = luaL_checklstring(L, 1, &len);
  if (len > TH_JWT_MAX_TOKEN) return fail(L, "token too long", "malformed");
  const char *d1 = memchr(tok, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
    return fail(L, "token must have 3 segments", "malformed");
  if (d1 == tok || d2 == d1 + 1) return fail(L, "empty token segment", "malformed");
  lua_settop(L, 1);
  /* stack: 1 token, 2 header json, 3 payload json, 4 signature bytes */
  if (!push_segment(L, tok, (size_t)(d1 - tok)) ||
      !push_segment(L, d1 + 1, (size_t)(d2 - d1 - 1)) ||
      !push_segment(L, d2 + 1, len - (size_t)(d2 + 1 - tok)))
    return fail(L, "token is not base64url", "malformed");
  if (!push_json_object(L, 2)) return fail(L, "header is not a JSON object", "malformed");
  /* 5: header table */
  const char *alg_name = th__jwk_field_str(L, 5, "alg");
  if (!alg_name) return fail(L, "header has no alg", "malformed");
  int kt = lua_getfield(L, 5, "kid");
  lua_pop(L, 1);
  if (kt != LUA_TNIL && kt != LUA_TSTRING) return fail(L, "kid is not a string", "malformed");
  const char *kid = th__jwk_field_str(L, 5, "kid");
  if (lua_getfield(L, 5, "crit") != LUA_TNIL)
    return fail(L, "unsupported crit header", "malformed");
  lua_pop(L, 1);

  jwt_alg alg = th__jwk_alg(alg_name);
  if (alg == ALG_NONE) return fail(L, "unsigned tokens are not accepted", "alg_not_allowed");
  if (alg == ALG_UNKNOWN) return fail(L, "unsupported alg", "alg_not_allowed");

  size_t siglen;
  const unsigned char *sig = (const unsigned char *)lua_tolstring(L, 4, &siglen);
  const unsigned char *input = (const unsigned char *)tok;
  size_t inlen = (size_t)(d2 - tok);
  if (alg == ALG_HS256) {
    /* HS256 is the dev path only: never verified with a key from the JWKS
     * (that is the algorithm-confusion attack). */
    if (!ks.dev_secret) {
      if (ks.nkeys) return fail(L, "HS256 tokens are not accepted", "alg_not_allowed");
      return fail(L, "no verification keys configured", "no_keys");
    }
    if (!verify_hs256(input, inlen, sig, siglen)) return fail(L, "bad signature", "bad_signature");
  } else {
    if (!ks.nkeys) return fail(L, "no verification keys configured", "no_keys");
    const jwt_key *key = find_key(kid);
    if (!key) return fail(L, kid ? "unknown kid" : "token has no kid", "unknown_kid");
    if (key->alg != alg) return fail(L, "alg does not match the key", "alg_not_allowed");
    if (!verify_sig(key, input, inlen, sig, siglen))
      return fail(L, "bad signature", "bad_signature");
  }

  /* Only an authenticated payload is parsed. */
  if (!push_json_object(L, 3)) return fail(L, "payload is not a JSON object", "malformed");
  int claims = lua_gettop(L);
  const char *msg = NULL;
  const char *code = check_claims(L, claims, &msg);
  if (code) return fail(L, msg, code);
  return 1;
}

/// Replace the key set with the keys of a JWKS document (e.g. after a
// refetch). On failure the old keys stay in place.
// @function set_jwks
// @tparam string json a JWKS: {"keys":[...]}; EdDSA (OKP Ed25519), RS256
//   (RSA, 2048 bits or more) and ES256 (EC P-256) keys are used, others skipped
// @treturn boolean true, or nil, message
static int l_set_jwks(lua_State *L) {
  size_t len, n = 0;
  const char *json = luaL_checklstring(L, 1, &len);
  jwt_key *keys = th__jwk_parse_set(L, json, len, &n);
  if (!keys) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  th__jwk_free_keys(ks.keys, ks.nkeys);
  ks.keys = keys;
  ks.nkeys = n;
  lua_pushboolean(L, 1);
  return 1;
}

static char *opt_string(lua_State *L, const char *field) {
  char *out = NULL;
  int t = lua_getfield(L, 1, field);
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n == 0 || strlen(s) != n)
      luaL_error(L, "jwt.configure: %s must be a non-empty string", field);
    out = xstrdup(s);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "jwt.configure: %s must be a string", field);
  }
  lua_pop(L, 1);
  return out;
}

#define TH_JWT_MAX_FILE (1024 * 1024)

/* Push the content of a (small) file, or push nil, message and return 0. */
static int push_file(lua_State *L, const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0;
  if (f) {
    buf = xmalloc(TH_JWT_MAX_FILE + 1);
    len = fread(buf, 1, TH_JWT_MAX_FILE + 1, f);
    int bad = ferror(f) || len > TH_JWT_MAX_FILE;
    fclose(f);
    if (bad) {
      free(buf);
      buf = NULL;
    }
  }
  if (!buf) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot read JWKS file %s", path);
    return 0;
  }
  lua_pushlstring(L, buf, len);
  free(buf);
  return 1;
}

/// Configure verification for this process. Replaces the whole previous
// configuration (keys included).
// @function configure
// @tparam table opts
//   `jwks` (JSON string or nil), `jwks_file` (path of a JWKS file, read now;
//   instead of jwks), `dev_secret` (string or nil: enables HS256),
//   `issuer` (string or nil), `audience` (string, list of strings, or nil),
//   `skew` (seconds, default 60), `require_exp` (boolean, default true)
// @treturn boolean true, or nil, message when the JWKS cannot be used
static int l_configure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  /* Validate everything before changing anything. */
  long skew = 60;
  if (lua_getfield(L, 1, "skew") != LUA_TNIL) {
    lua_Number v = luaL_checknumber(L, -1);
    luaL_argcheck(L, v >= 0 && v <= TH_JWT_MAX_SKEW, 1, "skew out of range (0..3600)");
    skew = (long)v;
  }
  lua_pop(L, 1);
  int require_exp = 1;
  if (lua_getfield(L, 1, "require_exp") != LUA_TNIL) require_exp = lua_toboolean(L, -1);
  lua_pop(L, 1);
  int t = lua_getfield(L, 1, "audience");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING || t == LUA_TTABLE, 1,
                "audience must be a string or a list of strings");
  if (t == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    luaL_argcheck(L, n > 0 && n <= 64, 1, "audience list must have 1 to 64 entries");
    for (lua_Integer i = 1; i <= n; i++) {
      luaL_argcheck(L, lua_geti(L, -1, i) == LUA_TSTRING, 1, "audience entries must be strings");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "dev_secret");
  luaL_argcheck(L, t == LUA_TNIL || (t == LUA_TSTRING && luaL_len(L, -1) > 0), 1,
                "dev_secret must be a non-empty string");
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "jwks");
  luaL_argcheck(L, t == LUA_TNIL || t == LUA_TSTRING, 1, "jwks must be a JSON string");
  int tf = lua_getfield(L, 1, "jwks_file");
  luaL_argcheck(L, tf == LUA_TNIL || tf == LUA_TSTRING, 1, "jwks_file must be a path");
  luaL_argcheck(L, t == LUA_TNIL || tf == LUA_TNIL, 1, "give jwks or jwks_file, not both");
  if (tf == LUA_TSTRING) {
    /* Bundle states have no io library: the file is read here, once, at
     * configuration time (a small local file; blocking is acceptable). */
    if (!push_file(L, lua_tostring(L, -1))) return 2;
    lua_replace(L, 2);
  }
  lua_settop(L, 2); /* 2: the JWKS text or nil */
  /* Last check that can raise, and the first allocation: nothing leaks. */
  char *issuer = opt_string(L, "issuer");
  jwt_key *keys = NULL;
  size_t nkeys = 0;
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *json = lua_tolstring(L, 2, &len);
    keys = th__jwk_parse_set(L, json, len, &nkeys);
    if (!keys) {
      free(issuer);
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
  }

  th_jwt_reset();
  ks.configured = 1;
  ks.keys = keys;
  ks.nkeys = nkeys;
  ks.skew = skew;
  ks.require_exp = require_exp;
  ks.issuer = issuer;
  if (lua_getfield(L, 1, "dev_secret") == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    ks.dev_secret = memcpy(xmalloc(n), s, n);
    ks.dev_secret_len = n;
  }
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "audience");
  if (t == LUA_TSTRING) {
    ks.audiences = xmalloc(sizeof *ks.audiences);
    ks.audiences[0] = xstrdup(lua_tostring(L, -1));
    ks.naud = 1;
  } else if (t == LUA_TTABLE) {
    size_t n = (size_t)luaL_len(L, -1);
    ks.audiences = xmalloc(sizeof *ks.audiences * n);
    for (size_t i = 0; i < n; i++) {
      lua_geti(L, -1, (lua_Integer)i + 1);
      ks.audiences[ks.naud++] = xstrdup(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fetch_in_progress(void) {
  return ks.fetching && mono_now() - ks.fetch_started < TH_JWT_FETCH_STALE;
}

/// What this process holds now.
// @function status
// @treturn table `configured` (configure was called), `keys` (number of
//   keys), `dev_secret` (HS256 accepted), `fetching` (a JWKS fetch started
//   by fetch_begin is in progress)
static int l_status(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, ks.configured);
  lua_setfield(L, -2, "configured");
  lua_pushinteger(L, (lua_Integer)ks.nkeys);
  lua_setfield(L, -2, "keys");
  lua_pushboolean(L, ks.dev_secret != NULL);
  lua_setfield(L, -2, "dev_secret");
  lua_pushboolean(L, fetch_in_progress());
  lua_setfield(L, -2, "fetching");
  return 1;
}

/// Claim the right to fetch the JWKS now: one fetch at a time per process,
// and not within min_interval seconds of the previous one.
// @function fetch_begin
// @tparam number min_interval seconds
// @treturn boolean true when the caller should fetch (then call fetch_end)
static int l_fetch_begin(lua_State *L) {
  lua_Number interval = luaL_checknumber(L, 1);
  double now = mono_now();
  int ok = !fetch_in_progress() && now - ks.last_fetch >= interval;
  if (ok) {
    ks.fetching = 1;
    ks.fetch_started = ks.last_fetch = now;
  }
  lua_pushboolean(L, ok);
  return 1;
}

/// Report the end of a fetch claimed with fetch_begin.
// @function fetch_end
static int l_fetch_end(lua_State *L) {
  ks.fetching = 0;
  return 0;
}

/// The kids of the keys held now, in JWKS order.
// @function kids
// @treturn table a list of strings (keys without a kid are not listed)
static int l_kids(lua_State *L) {
  lua_createtable(L, (int)ks.nkeys, 0);
  lua_Integer n = 0;
  for (size_t i = 0; i < ks.nkeys; i++) {
    if (!ks.keys[i].kid) continue;
    lua_pushstring(L, ks.keys[i].kid);
    lua_rawseti(L, -2, ++n);
  }
  th_mark_array(L);
  return 1;
}

/// Sign claims as an HS256 token (dev tokens and tests; production tokens
// come from the identity provider).
// @function sign_hs256
// @tparam table claims
// @tparam string secret
// @treturn string the compact token
static int l_sign_hs256(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t slen, plen;
  const char *secret = luaL_checklstring(L, 2, &slen);
  luaL_argcheck(L, slen > 0, 2, "secret must not be empty");
  th_buf payload = {0};
  if (th_json_encode(L, 1, &payload) < 0) {
    th_buf_free(&payload);
    return luaL_error(L, "jwt.sign_hs256: claims cannot be encoded: %s", lua_tostring(L, -1));
  }
  plen = payload.len;
  char *tok = hs256_token((const unsigned char *)secret, slen, payload.data, plen);
  th_buf_free(&payload);
  lua_pushstring(L, tok);
  free(tok);
  return 1;
}

int luaopen_th_jwt(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"verify", l_verify},
      {"set_jwks", l_set_jwks},
      {"configure", l_configure},
      {"kids", l_kids},
      {"sign_hs256", l_sign_hs256},
      {"status", l_status},
      {"fetch_begin", l_fetch_begin},
      {"fetch_end", l_fetch_end},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  return 1;
}

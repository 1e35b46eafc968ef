/* jwk.h: what prim/jwt.c and prim/jwk.c share: the key type and the JWKS
 * parser. Nothing here is visible outside the jwt primitive. */
#ifndef TH_JWK_H
#define TH_JWK_H

#include <lua.h>
#include <openssl/evp.h>
#include <stddef.h>

#define TH_JWT_MAX_KEYS 64 /* a JWKS with more keys is refused */

typedef enum { ALG_UNKNOWN = 0, ALG_NONE, ALG_EDDSA, ALG_RS256, ALG_ES256, ALG_HS256 } jwt_alg;

typedef struct {
  char *kid;   /* NULL when the JWK has no kid */
  jwt_alg alg; /* decided from the key's type, never from a token */
  EVP_PKEY *pkey;
} jwt_key;

/* The algorithm named s ("EdDSA", "RS256", "ES256", "HS256", "none"), or ALG_UNKNOWN. */
jwt_alg th__jwk_alg(const char *s);

/* Parse a JWKS JSON document into a new key array. Returns NULL and pushes an
 * error message on failure, else returns the array (count in *n) and leaves
 * the stack as it was. */
jwt_key *th__jwk_parse_set(lua_State *L, const char *json, size_t len, size_t *n);

void th__jwk_free_keys(jwt_key *keys, size_t n);

/* The string field `name` of the table at idx, or NULL (the table keeps it alive). */
const char *th__jwk_field_str(lua_State *L, int idx, const char *name);

#endif

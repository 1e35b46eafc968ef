/* jwt.h: the C side of the "jwt" and "crypto" primitives.
 * prim/jwt.c owns the process-wide key set (one per worker process) and JWT
 * verification; prim/crypto.c owns the base64url codec both modules share.
 * Every function returning a pointer returns malloc'd memory the caller frees. */
#ifndef TH_JWT_H
#define TH_JWT_H

#include <stddef.h>

/* Mint a dev HS256 token {"sub":sub,"iat":now,"exp":now+ttl[,"iss":..][,"aud":..]}
 * signed with secret. issuer and audience may be NULL. Returns a malloc'd
 * NUL-terminated token (for `todo-host token --sub USER --ttl N`). */
char *th_jwt_mint_hs256(const char *secret, const char *sub, long ttl_seconds, const char *issuer,
                        const char *audience);

/* base64url without padding. Returns a malloc'd NUL-terminated string; its
 * length in *out_len when out_len is not NULL. */
char *th_b64url_encode(const unsigned char *in, size_t len, size_t *out_len);

/* Strict base64url decode: alphabet A-Z a-z 0-9 - _, no padding, no
 * whitespace, unused trailing bits must be zero (one encoding per value).
 * Returns a malloc'd buffer (NUL-terminated for convenience, length in
 * *out_len), or NULL when the input is not valid base64url. */
unsigned char *th_b64url_decode(const char *in, size_t len, size_t *out_len);

/* Drop every key and the dev secret (tests, shutdown under valgrind). */
void th_jwt_reset(void);

#endif

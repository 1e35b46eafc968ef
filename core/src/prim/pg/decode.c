/* prim/pg/decode.c: PostgreSQL text results -> Lua values, typed by column OID.
 *
 * Owns nothing long-lived: th__pg_push_rows reads a PGresult the caller owns and
 * pushes new Lua values; its scratch buffer is a Lua userdata collected with the
 * frame. Every failure (memory, undecodable json or array) is a Lua error raised
 * inside the calling coroutine, never inside a libuv callback.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json/json.h"
#include "prim/pg/pg_internal.h"
#include "runtime/host.h"

/* Column and element type OIDs (pg_type.dat; stable across versions). */
enum {
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_OID = 26,
  OID_JSON = 114,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_TSTZ = 1184,
  OID_NUMERIC = 1700,
  OID_JSONB = 3802,
};

static Oid array_elem(Oid t) {
  switch (t) {
  case 1000: return OID_BOOL;
  case 1005: return OID_INT2;
  case 1007: return OID_INT4;
  case 1016: return OID_INT8;
  case 1028: return OID_OID;
  case 1021: return OID_FLOAT4;
  case 1022: return OID_FLOAT8;
  case 1231: return OID_NUMERIC;
  case 1185: return OID_TSTZ;
  case 199: return OID_JSON;
  case 3807: return OID_JSONB;
  case 1009:                            /* text */
  case 1015:                            /* varchar */
  case 1014:                            /* bpchar */
  case 1003:                            /* name */
  case 2951:                            /* uuid */
  case 1182:                            /* date */
  case 1115: /* timestamp */ return 25; /* as text */
  default: return 0;
  }
}

/* timestamptz text (ISO, any zone) -> RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.f]Z".
 * The fraction is what PostgreSQL prints: trailing zeros already dropped.
 * infinity and BC dates pass through unchanged. */
static void push_tstz(lua_State *L, const char *s, size_t len) {
  const char *sp = memchr(s, ' ', len);
  if (!sp || memchr(s, 'B', len)) {
    lua_pushlstring(L, s, len);
    return;
  }
  const char *t = sp + 1, *end = s + len, *off = t;
  while (off < end && *off != '+' && *off != '-')
    off++;
  if (off == end) {
    lua_pushlstring(L, s, len);
    return;
  }
  /* The offset: "+HH", "+HH:MM" or "+HH:MM:SS" (digits read by hand: sscanf and
   * snprintf were most of the cost of a row with three timestamps). */
  long parts[3] = {0, 0, 0};
  const char *q = off + 1;
  for (int k = 0; k < 3 && q < end; k++) {
    while (q < end && *q >= '0' && *q <= '9')
      parts[k] = parts[k] * 10 + (*q++ - '0');
    if (q < end && *q == ':') q++;
  }
  long offset = (*off == '-' ? -1 : 1) * (parts[0] * 3600L + parts[1] * 60L + parts[2]);
  const char *frac = memchr(t, '.', (size_t)(off - t));
  size_t fraclen = frac ? (size_t)(off - frac) : 0;
  char out[96];
  size_t dlen = (size_t)(sp - s), tlen = (size_t)(off - t);
  if (offset == 0 && dlen + tlen + 2 <= sizeof out) {
    memcpy(out, s, dlen);
    out[dlen] = 'T';
    memcpy(out + dlen + 1, t, tlen);
    out[dlen + 1 + tlen] = 'Z';
    lua_pushlstring(L, out, dlen + tlen + 2);
    return;
  } else {
    struct tm tm = {0};
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) {
      lua_pushlstring(L, s, len);
      return;
    }
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
    time_t u = timegm(&tm) - offset;
    gmtime_r(&u, &tm);
    snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d%.*sZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)fraclen,
             frac ? frac : "");
  }
  lua_pushstring(L, out);
}

/* json/jsonb columns: the host's one JSON decoder (json/decode.c), which keeps
 * [] apart from {} and maps null to the shared null. */
static void push_json(lua_State *L, const char *s, size_t len, char *scratch) {
  (void)scratch;
  if (th_json_decode(L, s, len) < 0)
    luaL_error(L, "pg: cannot decode json: %s", lua_tostring(L, -1));
}

static void push_scalar(lua_State *L, Oid t, const char *s, size_t len, char *scratch);

/* Array text "{a,"b c",NULL,{...}}" (maybe "[0:1]={...}"): Lua arrays, typed. */
static const char *push_array(lua_State *L, const char *p, const char *end, Oid elem, char *scratch,
                              int depth) {
  luaL_checkstack(L, 4, "array");
  if (depth > 6 || p >= end || *p != '{') luaL_error(L, "pg: cannot decode array");
  p++;
  lua_newtable(L);
  th_mark_array(L);
  if (p < end && *p == '}') return p + 1;
  for (lua_Integer k = 1;; k++) {
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p < end && *p == '{') {
      p = push_array(L, p, end, elem, scratch, depth + 1);
    } else if (p < end && *p == '"') {
      char *o = scratch;
      p++;
      while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) p++;
        *o++ = *p++;
      }
      if (p >= end) luaL_error(L, "pg: cannot decode array");
      p++;
      size_t n = (size_t)(o - scratch);
      /* element text may itself need the scratch (json): move it off first */
      lua_pushlstring(L, scratch, n);
      const char *copy = lua_tostring(L, -1);
      push_scalar(L, elem, copy, n, scratch);
      lua_remove(L, -2);
    } else {
      const char *q = p;
      while (q < end && *q != ',' && *q != '}')
        q++;
      const char *e = q;
      while (e > p && isspace((unsigned char)e[-1]))
        e--;
      if (e - p == 4 && strncasecmp(p, "NULL", 4) == 0)
        th_push_null(L);
      else
        push_scalar(L, elem, p, (size_t)(e - p), scratch);
      p = q;
    }
    lua_rawseti(L, -2, k);
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p < end && *p == ',') {
      p++;
      continue;
    }
    if (p < end && *p == '}') return p + 1;
    luaL_error(L, "pg: cannot decode array");
  }
}

static void push_scalar(lua_State *L, Oid t, const char *s, size_t len, char *scratch) {
  switch (t) {
  case OID_INT2:
  case OID_INT4:
  case OID_INT8:
  case OID_OID: lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10)); return;
  case OID_FLOAT4:
  case OID_FLOAT8: lua_pushnumber(L, strtod(s, NULL)); return;
  case OID_NUMERIC: /* integral values become integers when they fit */
    if (len < 64) {
      char tmp[64];
      memcpy(tmp, s, len);
      tmp[len] = 0;
      if (lua_stringtonumber(L, tmp)) return;
    }
    lua_pushnumber(L, strtod(s, NULL));
    return;
  case OID_BOOL: lua_pushboolean(L, s[0] == 't'); return;
  case OID_JSON:
  case OID_JSONB: push_json(L, s, len, scratch); return;
  case OID_TSTZ: push_tstz(L, s, len); return;
  default: {
    Oid elem = array_elem(t);
    if (elem && len > 0 && (s[0] == '{' || s[0] == '[')) {
      const char *p = s, *end = s + len;
      if (*p == '[') { /* explicit bounds: skip to the '=' */
        while (p < end && *p != '=')
          p++;
        if (p < end) p++;
      }
      push_array(L, p, end, elem, scratch, 1);
      return;
    }
    lua_pushlstring(L, s, len);
  }
  }
}

void th__pg_push_rows(lua_State *L, PGresult *r) {
  lua_newtable(L);
  th_mark_array(L);
  if (!r) {
    lua_pushnil(L);
    return;
  }
  int nrows = PQntuples(r), ncols = PQnfields(r);
  int rows_idx = lua_gettop(L);
  luaL_checkstack(L, ncols + 8, "pg rows");
  int names = lua_gettop(L) + 1;
  for (int k = 0; k < ncols; k++)
    lua_pushstring(L, PQfname(r, k));
  /* scratch for decoding: as long as the longest value */
  size_t longest = 0;
  for (int i = 0; i < nrows; i++)
    for (int k = 0; k < ncols; k++)
      if ((size_t)PQgetlength(r, i, k) > longest) longest = (size_t)PQgetlength(r, i, k);
  char *scratch = lua_newuserdatauv(L, longest + 1, 0); /* collected with the frame */
  for (int i = 0; i < nrows; i++) {
    lua_createtable(L, 0, ncols);
    for (int k = 0; k < ncols; k++) {
      lua_pushvalue(L, names + k);
      if (PQgetisnull(r, i, k))
        th_push_null(L);
      else
        push_scalar(L, PQftype(r, k), PQgetvalue(r, i, k), (size_t)PQgetlength(r, i, k), scratch);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, rows_idx, i + 1);
  }
  lua_settop(L, rows_idx);
  const char *aff = PQcmdTuples(r);
  if (aff && *aff)
    lua_pushinteger(L, (lua_Integer)strtoll(aff, NULL, 10));
  else
    lua_pushnil(L);
}

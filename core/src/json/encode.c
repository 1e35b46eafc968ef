/* json/encode.c: Lua values to JSON text (th_json_encode), on yajl's generator.
 *
 * One encoder for the whole host: json.encode, response bodies, log fields and
 * JWT claims. A single pass over the value writes straight into the caller's
 * th_buf; yajl_gen writes the syntax and escapes the strings. The text is the
 * one lua-cjson 2.1.0 wrote before (same arrays, number formats, escapes and
 * error messages), except that integers print exactly and empty tables marked
 * with json.array are [].
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "json/json.h"

#define MAX_DEPTH 128
/* A yajl_gen holds at most YAJL_MAX_DEPTH - 1 open containers; deeper tables
 * continue in the next generator (see container_gen). */
#define GEN_DEPTH (YAJL_MAX_DEPTH - 1)
#define NGEN ((MAX_DEPTH - 1) / GEN_DEPTH + 1)

typedef struct encoder {
  lua_State *L;
  th_buf *out;
  yajl_gen gen[NGEN];
  int mt;          /* stack index of the th.json.array metatable (or nil) */
  int del;         /* the string being escaped holds DEL bytes (see emit) */
  const char *raw; /* contents of the string being written unescaped (see put_string) */
  size_t raw_len;
  char err[128];
} encoder;

/* The host runs Lua on one thread and encoding runs no Lua code, so one
 * encoder (and its generators) serves every call; th_json_encode resets it. */
static encoder enc;

static void put(th_buf *b, const char *s, size_t n) {
  if (b->len + n < b->cap) { /* leaves room for the NUL, which th_json_encode writes */
    memcpy(b->data + b->len, s, n);
    b->len += n;
  } else {
    th_buf_add(b, s, n);
  }
}

/* Writes s with each DEL byte as \u007f. */
static __attribute__((noinline)) void put_del(th_buf *b, const char *s, size_t n) {
  const char *d;
  while ((d = memchr(s, 0x7f, n)) != NULL) {
    put(b, s, (size_t)(d - s));
    put(b, "\\u007f", 6);
    n -= (size_t)(d - s) + 1;
    s = d + 1;
  }
  put(b, s, n);
}

/* yajl's print callback. yajl prints each escape on its own, starting with a
 * backslash (a run of unescaped bytes never holds one), and the contents of a
 * string after its opening quote. Two of its escapes differ from cjson's, whose
 * text the host has always written: \u001F for control characters (cjson's is
 * lowercase) and DEL left raw (cjson's \u007f; DEL can only be in a string). */
static void emit(void *ctx, const char *s, size_t n) {
  encoder *e = ctx;
  th_buf *b = e->out;
  if (n == 1 && *s != 0x7f && b->len + 1 < b->cap) {
    b->data[b->len++] = *s;
  } else if (n == 0) {
    if (e->raw) { /* the empty contents put_string asked for */
      put(b, e->raw, e->raw_len);
      e->raw = NULL;
    }
  } else if (n == 6 && s[0] == '\\') {
    char u[6];
    memcpy(u, s, 6);
    if (u[5] >= 'A' && u[5] <= 'F') u[5] = (char)(u[5] - 'A' + 'a');
    put(b, u, 6);
  } else if (e->del && s[0] != '\\') {
    put_del(b, s, n);
  } else {
    put(b, s, n);
  }
}

static int fail(encoder *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(encoder *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->err, sizeof e->err, fmt, ap);
  va_end(ap);
  return -1;
}

/* yajl_gen only fails on misuse (a non-string key, too deep, after the end),
 * which the callers below rule out. */
static int check(encoder *e, yajl_gen_status st) {
  return st == yajl_gen_status_ok ? 0 : fail(e, "internal error (yajl_gen status %d)", (int)st);
}

/* The bytes yajl escapes (control characters, '"', '\') and DEL. */
static const unsigned char escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};

/* A string, as a key or a value. Bytes >= 0x80 pass as they are (no UTF-8
 * check, as cjson). Most strings have nothing to escape: for those yajl
 * generates the empty string (separator, quotes) and emit writes the contents
 * in one piece, which saves yajl's byte-by-byte escaping loop (a third of the
 * encoding time of a typical response). */
static int put_string(encoder *e, yajl_gen g, const char *s, size_t n) {
  size_t i = 0;
  while (i < n && !escaped[(unsigned char)s[i]])
    i++;
  yajl_gen_status st;
  if (i == n && n > 0) {
    e->raw = s;
    e->raw_len = n;
    st = yajl_gen_string(g, (const unsigned char *)"", 0);
    if (e->raw && st == yajl_gen_status_ok) st = yajl_gen_in_error_state; /* not written */
    e->raw = NULL;
  } else {
    e->del = memchr(s + i, 0x7f, n - i) != NULL;
    st = yajl_gen_string(g, (const unsigned char *)s, n);
    e->del = 0;
  }
  return check(e, st);
}

/* The text of the number at idx in buf (32 bytes): integers exactly, floats as
 * cjson with precision 14 ("%.14g", so 2.0 is "2"); NaN and infinities are
 * refused. Never converts the stack value (it may be a key of lua_next). */
static int number_text(encoder *e, int idx, char *buf, const char **s, size_t *n) {
  lua_State *L = e->L;
  if (lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
    char *p = th_decimal(buf + 32, u);
    if (v < 0) *--p = '-';
    *s = p;
    *n = (size_t)(buf + 32 - p);
    return 0;
  }
  double d = lua_tonumber(L, idx);
  if (isnan(d) || isinf(d)) return fail(e, "Cannot serialise number: must not be NaN or Inf");
  int len = snprintf(buf, 32, "%.14g", d);
  /* A locale with a decimal comma (os.setlocale) must not leak into JSON. */
  char *comma = memchr(buf, ',', (size_t)len);
  if (comma) *comma = '.';
  *s = buf;
  *n = (size_t)len;
  return 0;
}

static int encode_value(encoder *e, yajl_gen g, int depth);

/* cjson's array rule: a table whose keys are all integers >= 1 is an array of
 * max_key elements (holes are null) unless it is excessively sparse (max_key >
 * 2 * count and max_key > 10). A key beyond INT_MAX makes it an object: cjson
 * kept max_key in an int, and the conversion's overflow (INT_MIN on x86-64)
 * made such tables objects (or, depending on the traversal order, arrays that
 * lost those keys). Returns max_key, 0 for an empty table, -2 for an object,
 * -1 (error set) for a sparse array. */
static lua_Integer array_length(encoder *e, int t) {
  lua_State *L = e->L;
  lua_Integer max = 0, items = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) { /* float keys holding an integer are integers */
      lua_Integer k = lua_tointeger(L, -1);
      if (k >= 1 && k <= INT_MAX) {
        if (k > max) max = k;
        items++;
        continue;
      }
    }
    lua_pop(L, 1);
    return -2;
  }
  if (max - items > items && max > 10)
    return fail(e, "Cannot serialise table: excessively sparse array");
  return max;
}

/* The generator for a table at depth (1 for the outermost), g the one of its
 * parent. A table deeper than one generator holds is written by the next one,
 * after an empty "number" in the parent's makes that write the separator and
 * count the table as its value. */
static yajl_gen container_gen(encoder *e, yajl_gen g, int depth) {
  if (depth == 1 || (depth - 1) % GEN_DEPTH != 0) return g;
  if (check(e, yajl_gen_number(g, "", 0)) < 0) return NULL;
  g = e->gen[(depth - 1) / GEN_DEPTH];
  yajl_gen_reset(g, NULL);
  return g;
}

/* The table on top of the stack, at depth (1 for the outermost). A table marked
 * with json.array is an array also when empty; the mark changes nothing else
 * (a marked table with other keys is an object, as before). */
static int encode_table(encoder *e, yajl_gen g, int depth) {
  lua_State *L = e->L;
  if (depth > MAX_DEPTH || !lua_checkstack(L, 4))
    return fail(e, "Cannot serialise, excessive nesting (%d)", depth);
  int t = lua_gettop(L);
  lua_Integer n = array_length(e, t);
  if (n == -1) return -1;
  if (!(g = container_gen(e, g, depth))) return -1;
  int is_array = n > 0;
  if (n == 0 && lua_getmetatable(L, t)) {
    is_array = lua_rawequal(L, -1, e->mt);
    lua_pop(L, 1);
  }
  if (is_array) {
    if (check(e, yajl_gen_array_open(g)) < 0) return -1;
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, t, i);
      if (encode_value(e, g, depth) < 0) return -1;
      lua_pop(L, 1);
    }
    return check(e, yajl_gen_array_close(g));
  }
  if (check(e, yajl_gen_map_open(g)) < 0) return -1;
  lua_pushnil(L);
  while (lua_next(L, t)) { /* in lua_next's order, as cjson */
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      size_t kn;
      const char *k = lua_tolstring(L, -2, &kn);
      if (put_string(e, g, k, kn) < 0) return -1;
    } else if (kt == LUA_TNUMBER) {
      char buf[32];
      const char *k;
      size_t kn;
      if (number_text(e, -2, buf, &k, &kn) < 0 || put_string(e, g, k, kn) < 0) return -1;
    } else {
      return fail(e, "Cannot serialise %s: table key must be a number or string",
                  lua_typename(L, kt));
    }
    if (encode_value(e, g, depth) < 0) return -1;
    lua_pop(L, 1);
  }
  return check(e, yajl_gen_map_close(g));
}

/* The value on top of the stack, inside a table at depth (0 at the top). */
static int encode_value(encoder *e, yajl_gen g, int depth) {
  lua_State *L = e->L;
  int type = lua_type(L, -1);
  switch (type) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    return put_string(e, g, s, n);
  }
  case LUA_TNUMBER: {
    char buf[32];
    const char *s;
    size_t n;
    if (number_text(e, -1, buf, &s, &n) < 0) return -1;
    return check(e, yajl_gen_number(g, s, n));
  }
  case LUA_TBOOLEAN: return check(e, yajl_gen_bool(g, lua_toboolean(L, -1)));
  case LUA_TNIL: return check(e, yajl_gen_null(g));
  case LUA_TTABLE: return encode_table(e, g, depth + 1);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, -1) == NULL) return check(e, yajl_gen_null(g)); /* json.null */
    break;
  default: break;
  }
  return fail(e, "Cannot serialise %s: type not supported", lua_typename(L, type));
}

int th_json_encode(lua_State *L, int idx, th_buf *out) {
  encoder *e = &enc;
  if (!e->gen[NGEN - 1]) {
    for (int i = 0; i < NGEN; i++) {
      if (!e->gen[i] && !(e->gen[i] = yajl_gen_alloc(NULL))) {
        lua_pushliteral(L, "not enough memory");
        return -1;
      }
      yajl_gen_config(e->gen[i], yajl_gen_print_callback, emit, e);
    }
  }
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  size_t start = out->len;
  e->L = L;
  e->out = out;
  e->del = 0;
  e->raw = NULL;
  int rc;
  if (!lua_checkstack(L, 4)) {
    rc = fail(e, "Cannot serialise, excessive nesting (0)");
  } else {
    yajl_gen_reset(e->gen[0], NULL);
    luaL_getmetatable(L, TH_JSON_ARRAY_MT);
    e->mt = lua_gettop(L);
    lua_pushvalue(L, idx);
    rc = encode_value(e, e->gen[0], 0);
  }
  lua_settop(L, top);
  e->L = NULL;
  e->out = NULL;
  if (rc < 0) out->len = start; /* nothing of a value that failed stays */
  if (out->data) out->data[out->len] = '\0';
  if (rc < 0) {
    lua_pushstring(L, e->err);
    return -1;
  }
  return 0;
}

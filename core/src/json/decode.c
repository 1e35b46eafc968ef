/* json/decode.c: JSON text to Lua values, on yajl's streaming parser.
 *
 * One decoder for the whole host: json.decode, req:json() and the pg
 * primitive's json/jsonb columns. Values are built directly on the Lua stack
 * from yajl's callbacks (no intermediate tree). Arrays are marked with the
 * json array metatable so [] and {} stay distinct when encoded again; null is
 * the shared null value; integers that fit stay Lua integers. Strings are
 * checked as UTF-8 by yajl; nesting deeper than TH_JSON_MAX_DEPTH is refused.
 */
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "json/json.h"

#define TH_JSON_MAX_DEPTH 128

typedef struct frame {
  int is_array;
  lua_Integer n; /* elements so far, for arrays */
} frame;

typedef struct decoder {
  lua_State *L;
  frame stack[TH_JSON_MAX_DEPTH + 1];
  int depth;
  int too_deep;
} decoder;

/* Attach the value on top of the stack to its container (or leave it as the
 * result at depth 0). For objects the key sits just below the value. */
static int attach(decoder *d) {
  lua_State *L = d->L;
  if (d->depth == 0) return 1;
  frame *f = &d->stack[d->depth - 1];
  if (f->is_array)
    lua_rawseti(L, -2, ++f->n);
  else
    lua_rawset(L, -3);
  return 1;
}

static int on_null(void *ctx) {
  decoder *d = ctx;
  th_push_null(d->L);
  return attach(d);
}

static int on_boolean(void *ctx, int b) {
  decoder *d = ctx;
  lua_pushboolean(d->L, b);
  return attach(d);
}

static int on_number(void *ctx, const char *s, size_t n) {
  decoder *d = ctx;
  char buf[128];
  if (n >= sizeof buf) {
    /* Longer than any double needs: keep it as a float of the leading digits. */
    n = sizeof buf - 1;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (lua_stringtonumber(d->L, buf) == 0) {
    /* an integer too large for 64 bits: Lua reads it as a float */
    lua_pushnumber(d->L, strtod(buf, NULL));
  }
  return attach(d);
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
  decoder *d = ctx;
  lua_pushlstring(d->L, (const char *)s, n);
  return attach(d);
}

static int open_container(decoder *d, int is_array) {
  if (d->depth >= TH_JSON_MAX_DEPTH) {
    d->too_deep = 1;
    return 0;
  }
  luaL_checkstack(d->L, 4, "json nesting");
  lua_newtable(d->L);
  if (is_array) th_mark_array(d->L);
  d->stack[d->depth].is_array = is_array;
  d->stack[d->depth].n = 0;
  d->depth++;
  return 1;
}

static int close_container(decoder *d) {
  d->depth--;
  return attach(d);
}

static int on_start_map(void *ctx) { return open_container(ctx, 0); }
static int on_start_array(void *ctx) { return open_container(ctx, 1); }
static int on_end(void *ctx) { return close_container(ctx); }

static int on_map_key(void *ctx, const unsigned char *s, size_t n) {
  decoder *d = ctx;
  lua_pushlstring(d->L, (const char *)s, n);
  return 1;
}

static const yajl_callbacks callbacks = {
    on_null,      on_boolean, NULL,   NULL,           on_number, on_string,
    on_start_map, on_map_key, on_end, on_start_array, on_end,
};

typedef struct run_args {
  const char *s;
  size_t n;
  yajl_handle h;
  decoder *d;
  yajl_status status;
} run_args;

/* Runs inside lua_pcall so that a Lua memory error in a callback cannot leave
 * the yajl handle unfreed. */
static int run_parse(lua_State *L) {
  run_args *a = lua_touserdata(L, 1);
  lua_pop(L, 1);
  a->status = yajl_parse(a->h, (const unsigned char *)a->s, a->n);
  if (a->status == yajl_status_ok) a->status = yajl_complete_parse(a->h);
  return lua_gettop(L);
}

static int hex4(const char *p, const char *end) {
  int v = 0;
  if (end - p < 4) return -1;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

/* yajl turns an unpaired \uD800-\uDFFF escape into '?', silently changing the
 * text; refuse such strings instead. Returns the offending offset or -1. */
static long lone_surrogate(const char *s, size_t n) {
  const char *p = s, *end = s + n;
  while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
    if (p + 1 >= end) break;
    if (p[1] != 'u') {
      p += 2;
      continue;
    }
    int cp = hex4(p + 2, end);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      int lo = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8, end) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF) return p - s;
      p += 12;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return p - s;
    } else {
      p += cp < 0 ? 2 : 6; /* not four hex digits: yajl refuses it; never step past end */
    }
  }
  return -1;
}

int th_json_decode(lua_State *L, const char *s, size_t n) {
  long bad = memmem(s, n, "\\u", 2) ? lone_surrogate(s, n) : -1;
  if (bad >= 0) {
    lua_pushfstring(L, "unpaired UTF-16 surrogate escape at byte %d", (int)bad);
    return -1;
  }
  decoder d;
  memset(&d, 0, sizeof d);
  d.L = L;
  int base = lua_gettop(L);
  yajl_handle h = yajl_alloc(&callbacks, NULL, &d);
  if (!h) abort();
  run_args a = {s, n, h, &d, yajl_status_ok};
  lua_pushcfunction(L, run_parse);
  lua_pushlightuserdata(L, &a);
  int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
  if (rc != LUA_OK) {
    yajl_free(h);
    lua_error(L); /* memory errors propagate as Lua errors */
  }
  if (a.status != yajl_status_ok || lua_gettop(L) != base + 1) {
    lua_settop(L, base);
    if (d.too_deep) {
      lua_pushfstring(L, "nesting deeper than %d levels", TH_JSON_MAX_DEPTH);
    } else {
      unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)s, n);
      size_t off = yajl_get_bytes_consumed(h);
      /* yajl's message is "parse error: <what>\n" */
      const char *text = (const char *)msg;
      if (!strncmp(text, "parse error: ", 13)) text += 13;
      size_t len = strcspn(text, "\n");
      lua_pushlstring(L, text, len);
      if (off > 0 && off < n) {
        lua_pushfstring(L, " at byte %d", (int)off);
        lua_concat(L, 2);
      }
      yajl_free_error(h, msg);
    }
    yajl_free(h);
    return -1;
  }
  yajl_free(h);
  return 0;
}

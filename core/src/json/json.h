/* json.h: JSON for the whole host (json.encode/decode, response bodies, req:json(),
 * log fields, JWT claims, json/jsonb columns), on yajl, and the two markers
 * Lua values carry: null (a NULL lightuserdata, json.null) and the array mark
 * (a metatable, json.array) that keeps an empty [] apart from {}. A leaf: it
 * uses Lua and base/ only, nothing of the runtime. */
#ifndef TH_JSON_H
#define TH_JSON_H

#include <lauxlib.h>
#include <lua.h>

#include "base/buf.h"

/* The registry name of the array mark's metatable. */
#define TH_JSON_ARRAY_MT "th.json.array"

/* Push the shared "null" value (json.null, a NULL lightuserdata) so that a
 * database NULL encodes as JSON null. */
void th_push_null(lua_State *L);

/* Mark the table at the top of the stack as a JSON array (so `{}` encodes as []). */
void th_mark_array(lua_State *L);

/* Encode the value at idx of L as JSON into out; returns 0, or -1 with an error
 * message pushed on L. Tables marked as arrays encode as [] when empty. */
int th_json_encode(lua_State *L, int idx, th_buf *out);

/* Decode JSON text: pushes the value and returns 0, or pushes an error message
 * and returns -1. Arrays are marked (see th_mark_array); null is th_push_null. */
int th_json_decode(lua_State *L, const char *s, size_t n);

#endif

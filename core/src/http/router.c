/* router.c: the route table of a generation, matching, :params and URL decoding.
 *
 * The routes come from the manifests of a generation's states
 * (`routes = { {method=, path=, handler=}, ... }`); th_router_build reads them
 * once, when the server is given the generation, and refuses a table with a bad
 * route or the same method and path in two bundles. A router owns its routes
 * (split patterns); the patterns and handlers belong to the states (interned
 * strings, registry refs). Each route carries its metrics series, looked up
 * once here, so a response is counted without comparing strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "runtime/metrics.h"

static const char *methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL};

struct th_router {
  th_route *routes;
  int nroutes;
};

static int split_pattern(th_route *r, char *err, size_t errlen) {
  const char *p = r->pattern;
  int cap = 4;
  r->segments = malloc(sizeof(char *) * (size_t)cap);
  if (!r->segments) abort();
  r->nseg = 0;
  while (*p == '/') {
    p++;
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0 && end) {
      snprintf(err, errlen, "empty segment in path '%s'", r->pattern);
      return -1;
    }
    if (len == 0) break; /* trailing slash, or "/" itself */
    if (r->nseg == cap) {
      cap *= 2;
      r->segments = realloc(r->segments, sizeof(char *) * (size_t)cap);
      if (!r->segments) abort();
    }
    r->segments[r->nseg++] = strndup(p, len);
    p += len;
  }
  return 0;
}

void th_router_free(th_router *rt) {
  if (!rt) return;
  for (int i = 0; i < rt->nroutes; i++) {
    for (int j = 0; j < rt->routes[i].nseg; j++)
      free(rt->routes[i].segments[j]);
    free(rt->routes[i].segments);
  }
  free(rt->routes);
  free(rt);
}

/* Reads the routes of s's manifest into rt. */
static int collect_routes(th_router *rt, th_state *s, char *err, size_t errlen) {
  lua_State *L = s->L;
  char file[4096];
  snprintf(file, sizeof file, "%s/service.lua", s->dir);
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->manifest_ref);
  lua_getfield(L, -1, "routes");
  if (lua_isnil(L, -1)) {
    lua_settop(L, top);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: 'routes' must be a table", file);
    lua_settop(L, top);
    return -1;
  }
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i);
    if (!lua_istable(L, -1)) {
      snprintf(err, errlen, "%s: routes[%lld] must be a table {method=, path=, handler=}", file,
               (long long)i);
      lua_settop(L, top);
      return -1;
    }
    lua_getfield(L, -1, "method");
    lua_getfield(L, -2, "path");
    lua_getfield(L, -3, "handler");
    const char *method = lua_tostring(L, -3);
    const char *path = lua_tostring(L, -2);
    int ok_method = 0;
    for (const char **m = methods; method && *m; m++)
      ok_method |= !strcmp(*m, method);
    const char *problem = NULL;
    if (!ok_method)
      problem = "method must be one of GET HEAD POST PUT PATCH DELETE OPTIONS";
    else if (!path || path[0] != '/')
      problem = "path must be a string starting with '/'";
    if (problem) {
      snprintf(err, errlen, "%s: routes[%lld]: %s", file, (long long)i, problem);
      lua_settop(L, top);
      return -1;
    }
    if (!lua_isfunction(L, -1)) {
      snprintf(err, errlen, "%s: routes[%lld] (%s %s): handler must be a function", file,
               (long long)i, method, path);
      lua_settop(L, top);
      return -1;
    }
    rt->routes = realloc(rt->routes, sizeof(th_route) * (size_t)(rt->nroutes + 1));
    if (!rt->routes) abort();
    th_route *r = &rt->routes[rt->nroutes];
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->pattern = th_state_intern(s, path);
    r->state = s;
    rt->nroutes++;
    lua_pushvalue(L, -1);
    r->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->metrics = th_metrics_route_get(r->pattern);
    if (split_pattern(r, err, errlen) < 0) {
      lua_settop(L, top);
      return -1;
    }
    for (int k = 0; k < rt->nroutes - 1; k++) {
      th_route *o = &rt->routes[k];
      if (!strcmp(o->method, r->method) && !strcmp(o->pattern, r->pattern)) {
        snprintf(err, errlen, "%s: %s %s is already declared by bundle '%s'", file, method, path,
                 o->state->name);
        lua_settop(L, top);
        return -1;
      }
    }
    lua_pop(L, 4);
  }
  lua_settop(L, top);
  return 0;
}

th_router *th_router_build(th_generation *g) {
  char err[2048];
  th_router *rt = calloc(1, sizeof *rt);
  if (!rt) abort();
  for (int i = 0; i < g->nstates; i++) {
    if (collect_routes(rt, g->states[i], err, sizeof err) < 0) {
      fprintf(stderr, "todo-host: %s\n", err);
      th_router_free(rt);
      return NULL;
    }
  }
  return rt;
}

/* Matches segment by segment without allocating. */
static int route_matches(const th_route *r, const char *path, size_t len) {
  const char *p = path, *end = path + len;
  int seg = 0;
  while (p < end && *p == '/') {
    p++;
    const char *s = p;
    while (p < end && *p != '/')
      p++;
    size_t slen = (size_t)(p - s);
    if (slen == 0) {
      if (p == end) break; /* trailing slash */
      return 0;
    }
    if (seg >= r->nseg) return 0;
    const char *want = r->segments[seg++];
    if (want[0] == ':') continue;
    if (strlen(want) != slen || memcmp(want, s, slen) != 0) return 0;
  }
  return seg == r->nseg;
}

const th_route *th_route_match(const th_router *rt, const char *method, const char *path,
                               size_t path_len, int *method_mismatch) {
  *method_mismatch = 0;
  const th_route *head_fallback = NULL;
  for (int i = 0; i < rt->nroutes; i++) {
    const th_route *r = &rt->routes[i];
    if (!route_matches(r, path, path_len)) continue;
    if (!strcmp(r->method, method)) return r;
    if (!strcmp(method, "HEAD") && !strcmp(r->method, "GET")) head_fallback = r;
    *method_mismatch = 1;
  }
  if (head_fallback) *method_mismatch = 0;
  return head_fallback;
}

/* The methods declared for a path, for the Allow header of a 405. */
const char *th_route_allowed(const th_router *rt, const char *path, size_t len) {
  static char allow[64];
  allow[0] = '\0';
  for (const char **m = methods; *m; m++) {
    int declared = 0;
    for (int i = 0; i < rt->nroutes && !declared; i++)
      declared = !strcmp(rt->routes[i].method, *m) && route_matches(&rt->routes[i], path, len);
    if (!strcmp(*m, "HEAD") && !declared)
      for (int i = 0; i < rt->nroutes && !declared; i++)
        declared = !strcmp(rt->routes[i].method, "GET") && route_matches(&rt->routes[i], path, len);
    if (!declared) continue;
    if (allow[0]) strcat(allow, ", ");
    strcat(allow, *m);
  }
  return allow;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void th_push_urldecoded(lua_State *L, const char *s, size_t n, int plus_as_space) {
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, n);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else if (plus_as_space && s[i] == '+') {
      out[k++] = ' ';
    } else {
      out[k++] = s[i];
    }
  }
  luaL_pushresultsize(&b, k);
}

/* Percent-decoded :params of a matched route, as a table. */
void th_route_push_params(lua_State *L, const th_route *r, const char *path, size_t len) {
  const char *p = path, *end = path + len;
  int seg = 0;
  lua_createtable(L, 0, 2);
  while (p < end && *p == '/' && seg < r->nseg) {
    p++;
    const char *s = p;
    while (p < end && *p != '/')
      p++;
    const char *want = r->segments[seg++];
    if (want[0] != ':') continue;
    th_push_urldecoded(L, s, (size_t)(p - s), 0);
    lua_setfield(L, -2, want + 1);
  }
}

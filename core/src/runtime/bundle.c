/* bundle.c: loading bundles into a generation.
 *
 * A bundle is a directory whose service.lua returns the manifest
 * { name = "...", routes = {...}, on_start = function ... }. A generation is the
 * set of states (one per bundle) that the server uses at one time; SIGHUP
 * builds a new one and retires the old, whose states close when their last unit
 * of work ends. The route table is built from the manifests by the HTTP side
 * (http/router.c); each state owns its Lua values (the manifest is a registry
 * ref in that state).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/config.h"
#include "runtime/host_internal.h"

static th_state *load_bundle(th_generation *g, const char *dir, char *err, size_t errlen) {
  char file[4096];
  struct stat st;
  snprintf(file, sizeof file, "%s/service.lua", dir);
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: no such bundle directory", dir);
    return NULL;
  }
  if (stat(file, &st) < 0) {
    snprintf(err, errlen, "%s: missing manifest (a bundle needs service.lua)", file);
    return NULL;
  }
  th_state *s = th_state_new(TH_STATE_BUNDLE, dir, th_cfg.bundle_memory * 1024 * 1024, err, errlen);
  if (!s) return NULL;
  s->gen = g;
  lua_State *L = s->L;
  if (luaL_loadfile(L, file) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    th_state_free(s);
    return NULL;
  }
  if (th_state_pcall_load(s, 0, 1) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    th_state_free(s);
    return NULL;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, errlen, "%s: the manifest must return a table", file);
    th_state_free(s);
    return NULL;
  }
  lua_getfield(L, -1, "name");
  const char *name = lua_tostring(L, -1);
  if (!name || !*name) {
    snprintf(err, errlen, "%s: the manifest needs a non-empty 'name'", file);
    th_state_free(s);
    return NULL;
  }
  s->name = strdup(name);
  lua_pop(L, 1);
  int t = lua_getfield(L, -1, "on_start");
  lua_pop(L, 1);
  if (t != LUA_TNIL && t != LUA_TFUNCTION) {
    snprintf(err, errlen, "%s: 'on_start' must be a function", file);
    th_state_free(s);
    return NULL;
  }
  s->manifest_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return s;
}

th_generation *th_generation_load(char **dirs, int n) {
  char err[2048];
  th_generation *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->states = calloc((size_t)n, sizeof(th_state *));
  if (!g->states) abort();
  for (int i = 0; i < n; i++) {
    /* Trim trailing slashes so names and messages read well. */
    char *dir = strdup(dirs[i]);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
      dir[--len] = '\0';
    th_state *s = load_bundle(g, dir, err, sizeof err);
    free(dir);
    if (!s) {
      fprintf(stderr, "todo-host: %s\n", err);
      th_generation_retire(g);
      return NULL;
    }
    for (int k = 0; k < g->nstates; k++)
      if (!strcmp(g->states[k]->name, s->name)) {
        fprintf(stderr, "todo-host: %s: bundle name '%s' is used twice\n", s->dir, s->name);
        g->states[g->nstates++] = s;
        th_generation_retire(g);
        return NULL;
      }
    g->states[g->nstates++] = s;
  }
  return g;
}

void th_generation_start(th_generation *g) {
  for (int i = 0; i < g->nstates; i++) {
    th_state *s = g->states[i];
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->manifest_ref);
    if (lua_getfield(L, -1, "on_start") == LUA_TFUNCTION) {
      lua_remove(L, -2);
      th_task_start(s, L, 0, "on_start");
    } else {
      lua_pop(L, 2);
    }
  }
}

void th_generation_retire(th_generation *g) {
  if (!g) return;
  for (int i = 0; i < g->nstates; i++) {
    th_state_signal_stop(g->states[i]);
    g->states[i]->retired = 1;
    g->states[i]->gen = NULL;
    th_state_maybe_close(g->states[i]);
  }
  free(g->states);
  free(g);
}

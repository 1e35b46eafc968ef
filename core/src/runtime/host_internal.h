/* host_internal.h: what the core (server, bundles, router, CLI) knows about bundle
 * states and generations; primitives only see host.h. */
#ifndef TH_HOST_INTERNAL_H
#define TH_HOST_INTERNAL_H

#include "host.h"
#include "log.h"

typedef struct th_route {
  char method[8];
  const char *pattern; /* as declared, e.g. /api/tasks/:id (owned by the state) */
  char **segments;     /* split pattern; a segment starting with ':' is a param */
  int nseg;
  int handler_ref; /* registry ref in state->L */
  th_state *state;
} th_route;

typedef enum { TH_STATE_BUNDLE, TH_STATE_SCRIPT } th_state_mode;

struct th_state {
  lua_State *L;
  char *name; /* bundle name from the manifest */
  char *dir;  /* bundle directory */
  size_t mem_used, mem_limit;
  int inflight;     /* live ctxs */
  int retired;      /* closed when inflight drops to zero */
  th_ctx *free_ctx; /* recycled ctxs (their coroutines are reused) */
  int nfree;
  int req_mt_ref;            /* metatable of request objects */
  int manifest_ref;          /* the manifest table */
  uint64_t load_deadline_ns; /* CPU bound while loading the manifest */
  struct th_generation *gen;
  char **interned; /* strings that live as long as the state (route patterns) */
  int ninterned;
  int stopping; /* background tasks should return (reload, shutdown) */
};

/* A copy of str owned by s, valid until the state closes. */
const char *th_state_intern(th_state *s, const char *str);

typedef struct th_generation {
  th_state **states;
  int nstates;
  th_route *routes;
  int nroutes;
  int refs; /* the server holds one while it is current */
} th_generation;

/* Create a Lua state. mode BUNDLE gets the allow-listed environment. lua_dirs is a
 * ';'-separated list of extra module roots (the repository's lua/). */
th_state *th_state_new(th_state_mode mode, const char *dir, size_t mem_limit, char *err,
                       size_t errlen);
void th_state_free(th_state *s);
/* Called when a ctx of s finished; frees a retired state that became idle. */
void th_state_maybe_close(th_state *s);

/* Take a ctx for a new unit of work on s. The function to run and its args are
 * then pushed onto ctx->co and th_ctx_start starts it. */
th_ctx *th_ctx_new(th_state *s, th_ctx_kind kind);
/* The ctx inside lua_resume now, or NULL (module loading, no Lua running). */
th_ctx *th_running_ctx(void);
/* CLOCK_MONOTONIC in nanoseconds: the clock of the CPU budget. */
uint64_t th_now_ns(void);

/* CPU budget (budget.c): the per-process tick, the thread running Lua (swap
 * returns the previous one, to restore), the sandbox's tracked coroutines. */
void th_budget_install(void);
lua_State *th_budget_swap(lua_State *L);
void th_budget_open_coroutine(lua_State *L);
void th_ctx_start(th_ctx *ctx, int nargs);
/* Give a finished ctx back (from its done callback). */
void th_ctx_release(th_ctx *ctx);

/* Load every bundle directory into a new generation. On failure prints one line
 * naming the file (and line) and returns NULL. */
th_generation *th_generation_load(char **dirs, int n);
void th_generation_retire(th_generation *g);
const th_route *th_route_match(const th_generation *g, const char *method, const char *path,
                               size_t path_len, int *method_mismatch);

const char *th_route_allowed(const th_generation *g, const char *path, size_t len);

/* Capture the :params of a matched route into a new table on L. */
void th_route_push_params(lua_State *L, const th_route *r, const char *path, size_t path_len);

/* Push the percent-decoded bytes of s; '+' becomes a space when plus_as_space. */
void th_push_urldecoded(lua_State *L, const char *s, size_t n, int plus_as_space);

/* Where the repository's shared Lua modules live (lua/), found once at start-up. */
const char *th_lua_root(void);
void th_set_lua_root(const char *dir);

/* Encode the value at idx of L as JSON into out; returns 0, or -1 with an error
 * message pushed on L. Tables marked as arrays encode as [] when empty. */
int th_json_encode(lua_State *L, int idx, th_buf *out);

/* Decode JSON text: pushes the value and returns 0, or pushes an error message
 * and returns -1. Arrays are marked (see th_mark_array); null is th_push_null. */
int th_json_decode(lua_State *L, const char *s, size_t n);

/* The loop of this process. */
void th_loop_init(void);

/* Background tasks (prim_task.c). */
void th_task_start(th_state *s, lua_State *L, int nargs, const char *name);
void th_state_signal_stop(th_state *s);
int th_jobs_active(void);
void th_jobs_on_idle(void (*cb)(void));
/* Run each state's manifest on_start as a background task. */
void th_generation_start(th_generation *g);
/* Ask every live state's background tasks to stop. */
void th_states_signal_stop(void);

/* Total Lua memory of live states, per bundle, for /metrics. */
typedef void (*th_state_visit_fn)(const th_state *s, void *arg);
void th_states_visit(th_state_visit_fn fn, void *arg);

#endif

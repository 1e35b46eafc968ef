/* host_internal.h: what the core (server, router, CLI) knows about bundle states
 * and generations; primitives only see host.h. */
#ifndef TH_HOST_INTERNAL_H
#define TH_HOST_INTERNAL_H

#include "runtime/host.h"
#include "runtime/log.h"

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

/* The states of every bundle loaded together; the server serves one generation
 * at a time (its route table is the router's, http/router.c). */
typedef struct th_generation {
  th_state **states;
  int nstates;
} th_generation;

/* What every new state gets in package.preload (the primitives and facades):
 * set once by main.c, so the runtime does not depend on prim/. */
typedef void (*th_preload_fn)(lua_State *L);
void th_host_set_preload(th_preload_fn fn);

/* Create a Lua state. mode BUNDLE gets the allow-listed environment. */
th_state *th_state_new(th_state_mode mode, const char *dir, size_t mem_limit, char *err,
                       size_t errlen);
void th_state_free(th_state *s);
/* Called when a ctx of s finished; frees a retired state that became idle. */
void th_state_maybe_close(th_state *s);
/* Call the function below nargs args on s->L at load time (manifests): no
 * traceback, bounded by a CPU deadline. Returns lua_pcall's status. */
int th_state_pcall_load(th_state *s, int nargs, int nres);

/* Take a ctx for a new unit of work on s. The function to run and its args are
 * then pushed onto ctx->co and th_ctx_start starts it. */
th_ctx *th_ctx_new(th_state *s, th_ctx_kind kind);
void th_ctx_start(th_ctx *ctx, int nargs);
/* Give a finished ctx back (from its done callback). */
void th_ctx_release(th_ctx *ctx);
/* The ctx inside lua_resume now, or NULL (module loading, no Lua running). */
th_ctx *th_running_ctx(void);
/* CLOCK_MONOTONIC in nanoseconds: the clock of the CPU budget. */
uint64_t th_now_ns(void);

/* CPU budget (budget.c): the per-process tick, the thread running Lua (swap
 * returns the previous one, to restore), the sandbox's tracked coroutines. */
void th_budget_install(void);
lua_State *th_budget_swap(lua_State *L);
void th_budget_open_coroutine(lua_State *L);

/* Load every bundle directory into a new generation (bundle.c). On failure
 * prints one line naming the file (and line) and returns NULL. */
th_generation *th_generation_load(char **dirs, int n);
void th_generation_retire(th_generation *g);
/* Run each state's manifest on_start as a background task. */
void th_generation_start(th_generation *g);

/* Where the repository's shared Lua modules live (lua/), found once at start-up. */
const char *th_lua_root(void);
void th_set_lua_root(const char *dir);

/* The loop of this process. */
void th_loop_init(void);

/* Background tasks (tasks.c): start the function at the top of L (nargs
 * arguments above it) as a job of s; ask the tasks of one state or of every
 * live state to stop; count them, and be told when the last one returned. */
void th_task_start(th_state *s, lua_State *L, int nargs, const char *name);
void th_state_signal_stop(th_state *s);
void th_states_signal_stop(void);
int th_jobs_active(void);
/* task.wait: sleep up to seconds in the running job, ending early (with true)
 * when its state should stop. Use as `return th_task_wait(L, s);`. */
int th_task_wait(lua_State *L, double seconds);
void th_jobs_on_idle(void (*cb)(void));

/* Every live state, for /metrics. */
typedef void (*th_state_visit_fn)(const th_state *s, void *arg);
void th_states_visit(th_state_visit_fn fn, void *arg);

#endif

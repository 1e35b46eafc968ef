/* host.h: the contract between the Lua host (scheduler, bundle states) and the
 * primitives. A primitive is a few C functions registered as a Lua module
 * (`luaopen_*`), plus an optional Lua facade in core/lua/ embedded in the binary.
 *
 * Work units: every HTTP request, event delivery, job tick or script runs in its
 * own coroutine owned by a th_ctx. A primitive that must wait follows three steps:
 *   1. try now; if the answer is ready, return it;
 *   2. otherwise remember the ctx (th_ctx_current) and register a cancel hook,
 *      then `return th_yield(L, cancel, data);`
 *   3. when the answer arrives (a libuv callback), push the results onto
 *      ctx->co and call th_resume(ctx, nresults). th_resume is the only way back
 *      into Lua; it clears the cancel hook before resuming.
 * The cancel hook runs only when the ctx is torn down while waiting (shutdown,
 * forced reload); it must stop the timer / query / socket and must not resume.
 */
#ifndef TH_HOST_H
#define TH_HOST_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct th_state th_state;
typedef struct th_ctx th_ctx;

typedef enum {
  TH_CTX_REQUEST = 1, /* an HTTP request handler */
  TH_CTX_EVENT,       /* an event delivery */
  TH_CTX_JOB,         /* a scheduled job tick */
  TH_CTX_SCRIPT,      /* `todo-host script FILE` */
} th_ctx_kind;

typedef void (*th_cancel_fn)(th_ctx *ctx, void *data);
/* Called once when the coroutine finished (status LUA_OK) or failed. On failure
 * the error message (with traceback) is at the top of ctx->co. */
typedef void (*th_done_fn)(th_ctx *ctx, int status, int nresults);

struct th_ctx {
  lua_State *co;   /* the coroutine */
  int co_ref;      /* registry ref in state->L anchoring co */
  th_state *state; /* the bundle state co belongs to */
  th_ctx_kind kind;
  int waiting;         /* 1 between th_yield and th_resume */
  th_cancel_fn cancel; /* may be NULL when the wait needs no teardown */
  void *cancel_data;
  th_done_fn done;
  void *owner;                            /* the connection, delivery, ... that started it */
  const char *route_pattern;              /* requests: the matched route (owned by the state) */
  struct th_metrics_route *route_metrics; /* requests: that route's series */
  char request_id[64];                    /* for log lines; may be empty */
  uint64_t cpu_used_ns;                   /* Lua run time so far, against the CPU budget */
  uint64_t slice_start_ns;                /* start of the current resume */
  uint64_t cpu_total_ns; /* Lua run time of the whole unit (jobs too), with charges */
  char *log_fields;      /* JSON members added to its log lines (task.log_context), or NULL */
};

/* The loop of this process (one per worker). */
uv_loop_t *th_loop(void);

/* The ctx running L, or NULL when L is not a work coroutine (module top level,
 * a nested user coroutine). */
th_ctx *th_ctx_current(lua_State *L);

/* Like th_ctx_current but raises a Lua error naming `what` when there is no ctx
 * or when L is a nested coroutine that cannot be resumed by the scheduler. */
th_ctx *th_ctx_check(lua_State *L, const char *what);

/* Suspend the running ctx until th_resume. Use as `return th_yield(...)`. */
int th_yield(lua_State *L, th_cancel_fn cancel, void *data);

/* Resume a waiting ctx with the nresults values already pushed onto ctx->co.
 * May run Lua code and may finish (and free) the ctx: do not touch ctx after. */
void th_resume(th_ctx *ctx, int nresults);

/* The Lua run time of ctx so far (its running slice included), with what was
 * charged to it: the clock of task.cpu_used. */
uint64_t th_ctx_cpu_ns(const th_ctx *ctx);
/* Charge ns (negative: credit) to ctx, against its CPU budget too (never below
 * zero). A batch run by one unit for many (lua/ batch) shares its time this way. */
void th_ctx_charge_cpu(th_ctx *ctx, int64_t ns);
/* Members `"k":v,...` added to every log line of ctx (a copy; NULL or "" clears). */
void th_ctx_set_log_fields(th_ctx *ctx, const char *members, size_t len);

/* Logging from C. level: "debug", "info", "warn", "error". Writes one JSON line
 * with the ctx's request id when ctx is not NULL. */
void th_log(th_ctx *ctx, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/* wait.h: a coroutine waiting with a deadline, written once for every primitive
 * (timer.sleep, task.wait, listener:wait), as luv's lhandle.c does for handles.
 *
 * A th_wait is one heap block holding a uv_timer_t, the waiting ctx and a list
 * node. th_wait_yield starts the timer and yields the ctx with a cancel hook;
 * then exactly one of three things ends it:
 *   - the deadline: the owner's on_timeout runs (it pushes the results and calls
 *     th_wait_finish);
 *   - the owner wakes it earlier: it pushes the results and calls th_wait_finish;
 *   - the ctx is torn down (shutdown, reload): the cancel hook closes it.
 * Ending unlinks the node from whatever list the owner put it in, stops the
 * timer and closes it; the block is freed in the timer's close callback, never
 * before (libuv still owns the handle until then). */
#ifndef TH_WAIT_H
#define TH_WAIT_H

#include "base/list.h"
#include "runtime/host.h"

typedef struct th_wait th_wait;
typedef void (*th_wait_fn)(th_wait *w);

struct th_wait {
  uv_timer_t timer;
  th_ctx *ctx;
  th_wait_fn on_timeout; /* pushes the results onto ctx->co, calls th_wait_finish */
  void *data;            /* the owner's (a listener, ...) */
  th_list link;          /* the owner's list of waits, if any */
};

/* A new wait for the ctx running L (raises naming `what` outside one). */
th_wait *th_wait_new(lua_State *L, const char *what, th_wait_fn on_timeout, void *data);

/* Start the deadline (seconds from now) and yield. Use as `return th_wait_yield(...)`. */
int th_wait_yield(lua_State *L, th_wait *w, double seconds);

/* Resume the waiting ctx with the nresults values pushed onto w->ctx->co; w is
 * closed first (do not touch it after). */
void th_wait_finish(th_wait *w, int nresults);

/* Close w without resuming (shutdown). */
void th_wait_close(th_wait *w);

#endif

/* wait.c: a coroutine waiting with a deadline (see wait.h). Owns each th_wait
 * from th_wait_new to the close callback of its timer. */
#include "runtime/wait.h"

#include <stdlib.h>

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_deadline(uv_timer_t *t) {
  th_wait *w = t->data;
  w->on_timeout(w);
}

static void cancel(th_ctx *ctx, void *data) {
  (void)ctx;
  th_wait_close(data);
}

th_wait *th_wait_new(lua_State *L, const char *what, th_wait_fn on_timeout, void *data) {
  th_ctx *ctx = th_ctx_check(L, what);
  th_wait *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->ctx = ctx;
  w->on_timeout = on_timeout;
  w->data = data;
  th_list_init(&w->link);
  uv_timer_init(th_loop(), &w->timer);
  w->timer.data = w;
  return w;
}

int th_wait_yield(lua_State *L, th_wait *w, double seconds) {
  /* The loop's clock is cached per turn; a long Lua run would make the timer
   * fire early without this. */
  uv_update_time(th_loop());
  uv_timer_start(&w->timer, on_deadline, (uint64_t)(seconds * 1000 + 0.5), 0);
  return th_yield(L, cancel, w);
}

void th_wait_close(th_wait *w) {
  th_list_remove(&w->link);
  uv_timer_stop(&w->timer);
  uv_close((uv_handle_t *)&w->timer, on_closed);
}

void th_wait_finish(th_wait *w, int nresults) {
  th_ctx *ctx = w->ctx;
  th_wait_close(w);
  th_resume(ctx, nresults);
}

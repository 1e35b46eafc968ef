/* later.c: the one resume-later queue (later.h): a FIFO of th_later entries,
 * resumed by an idle handle (TH_LATER_BEFORE_POLL) and a check handle
 * (TH_LATER_AFTER_POLL). The idle handle runs while anything is queued, so that
 * the loop's poll does not block on a queued resume; the check handle runs while
 * an AFTER_POLL entry is queued. Each phase first takes a snapshot of its
 * entries, in queue order, then resumes them: what they queue waits for the
 * phase's next run. */
#include "runtime/later.h"

static th_list queue = TH_LIST_INIT(queue);
static int queued[2]; /* entries per phase, snapshots included */
static uv_idle_t idle;
static uv_check_t check;
static int handles_open;

static void on_idle(uv_idle_t *h);
static void on_check(uv_check_t *h);

static void update_handles(void) {
  if (queued[TH_LATER_BEFORE_POLL] + queued[TH_LATER_AFTER_POLL] == 0) uv_idle_stop(&idle);
  if (queued[TH_LATER_AFTER_POLL] == 0) uv_check_stop(&check);
}

void th_later_queue(th_later *l, th_ctx *ctx, th_later_when when, th_later_results_fn results) {
  if (!handles_open) {
    uv_idle_init(th_loop(), &idle);
    uv_check_init(th_loop(), &check);
    handles_open = 1;
  }
  l->ctx = ctx;
  l->when = when;
  l->results = results;
  th_list_push_back(&queue, &l->link);
  queued[when]++;
  uv_idle_start(&idle, on_idle);
  if (when == TH_LATER_AFTER_POLL) uv_check_start(&check, on_check);
}

int th_later_queued(const th_later *l) { return th_list_linked(&l->link); }

void th_later_remove(th_later *l) {
  if (!th_later_queued(l)) return;
  th_list_remove(&l->link);
  queued[l->when]--;
  if (handles_open) update_handles();
}

/* Resume the entries of phase `when` queued before now, in queue order. */
static void run_phase(th_later_when when) {
  th_list turn = TH_LIST_INIT(turn);
  for (th_list *n = th_list_first(&queue), *next; n; n = next) {
    next = th_list_next(&queue, n);
    if (th_list_entry(n, th_later, link)->when != when) continue;
    th_list_remove(n);
    th_list_push_back(&turn, n);
  }
  th_list *n;
  while ((n = th_list_first(&turn))) {
    th_later *l = th_list_entry(n, th_later, link);
    th_list_remove(n);
    queued[when]--;
    th_ctx *ctx = l->ctx;
    int nres = l->results(l, ctx->co); /* may free l */
    if (nres >= 0) th_resume(ctx, nres);
  }
  update_handles();
}

static void on_idle(uv_idle_t *h) {
  (void)h;
  if (queued[TH_LATER_BEFORE_POLL]) run_phase(TH_LATER_BEFORE_POLL);
}

static void on_check(uv_check_t *h) {
  (void)h;
  run_phase(TH_LATER_AFTER_POLL);
}

void th_later_shutdown(void) {
  th_list *n;
  while ((n = th_list_first(&queue))) {
    th_later *l = th_list_entry(n, th_later, link);
    th_list_remove(n);
    queued[l->when]--;
    l->results(l, NULL);
  }
  if (!handles_open) return;
  handles_open = 0;
  uv_close((uv_handle_t *)&idle, NULL);
  uv_close((uv_handle_t *)&check, NULL);
}

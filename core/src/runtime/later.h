/* later.h: the ONE resume-later queue of the runtime: every primitive that must
 * not resume a coroutine from where it learns the answer (inside another
 * coroutine's Lua call, or in the middle of its own bookkeeping) queues it here,
 * and the loop resumes it (task.defer and task.event, the pg pool's waiters and
 * answers). One list, FIFO, one pair of loop handles, one cancel and one
 * shutdown path.
 *
 * When an entry is resumed is part of its primitive's contract, so each says:
 *   TH_LATER_BEFORE_POLL  in the loop's idle phase: at the start of the next
 *                         iteration, before the loop polls for I/O again (the pg
 *                         pool: a freed connection or an answer goes to its
 *                         waiter before new requests are read);
 *   TH_LATER_AFTER_POLL   in the check phase, after the loop has handled the I/O
 *                         that was ready (task.defer: requests read in the same
 *                         poll meet before any goes on; events).
 * Entries queued while their phase runs wait for its next run (a resumed
 * coroutine cannot starve the loop), and the poll does not block while anything
 * is queued. */
#ifndef TH_LATER_H
#define TH_LATER_H

#include "base/list.h"
#include "runtime/host.h"

typedef enum { TH_LATER_BEFORE_POLL, TH_LATER_AFTER_POLL } th_later_when;

typedef struct th_later th_later;

/* Push the results of the resume onto co and return how many, just before the
 * resume (it may free the struct that holds l); return -1 to drop the resume.
 * With co NULL the resume will not happen (shutdown): free what l's owner holds. */
typedef int (*th_later_results_fn)(th_later *l, lua_State *co);

/* Embedded in the primitive's own record of a waiting coroutine. */
struct th_later {
  th_ctx *ctx;
  th_later_results_fn results;
  th_later_when when;
  th_list link; /* in the queue, or in a phase's snapshot */
};

/* Queue ctx to be resumed in phase `when` with what results() pushes. */
void th_later_queue(th_later *l, th_ctx *ctx, th_later_when when, th_later_results_fn results);
/* Whether l is queued (and not resumed yet). */
int th_later_queued(const th_later *l);
/* Take l out of the queue (a cancel hook); nothing when it is not queued. */
void th_later_remove(th_later *l);
/* Close the handles; entries still queued get results(l, NULL). */
void th_later_shutdown(void);

#endif

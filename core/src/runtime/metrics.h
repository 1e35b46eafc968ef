/* metrics.h: Prometheus counters and histograms of the whole process group
 * (shared by the workers), and each worker's gauges. */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <stdint.h>

#include "base/buf.h"

/* The series of one route pattern ("unmatched" for requests no route took). */
typedef struct th_metrics_route th_metrics_route;

/* Find or create the series of a pattern: once per route, when a route table is
 * built; the pointer stays valid for the life of the process. */
th_metrics_route *th_metrics_route_get(const char *pattern);

/* Count one response. method_id is a number per method name (-1 for "-"); the
 * name is kept for the label when the pair is first seen. */
void th_metrics_request(th_metrics_route *route, int method_id, const char *method, int status,
                        uint64_t duration_ns);

/* Gauges the pg pool updates. */
void th_metrics_pool(int in_use, int idle, int waiting);

/* Make the table the workers share; `run` calls it once before it forks. Without
 * it (scripts, tests) the first use makes a private one. Returns 0 or -1. */
int th_metrics_share(void);

/* A worker publishes its gauges (Lua memory per bundle) now and every second
 * from then on, so that a scrape answered by another worker shows them. */
void th_metrics_start(void);
void th_metrics_publish(void);

void th_metrics_render(th_buf *out);

/* Add samples rendered by a folder above runtime/ (ws/, at start-up). */
void th_metrics_add_renderer(void (*render)(th_buf *out));

/* Counters and gauges of folders above runtime/ (ws/), kept in the shared table
 * too, so that whichever worker answers a scrape shows the group's.
 *
 * th_metrics_counter finds or makes the counter of one sample ("name" or
 * "name{label=\"v\"}"), once, at start-up; NULL when the table is full, and
 * th_metrics_add ignores NULL. Render it with th_metrics_counter_value.
 *
 * A gauge is per worker: th_metrics_gauge gives the id of a name (-1 when the
 * table is full); a publisher (th_metrics_add_publisher, called whenever the
 * worker publishes its gauges: every second and before it renders a scrape)
 * sets this worker's value with th_metrics_gauge_set, and
 * th_metrics_render_gauge writes `name{worker="pid"} value` for every live
 * worker. */
uint64_t *th_metrics_counter(const char *sample);
void th_metrics_add(uint64_t *counter, uint64_t n);
uint64_t th_metrics_counter_value(const uint64_t *counter);
int th_metrics_gauge(const char *name);
void th_metrics_add_publisher(void (*publish)(void));
void th_metrics_gauge_set(int id, int64_t value);
void th_metrics_render_gauge(th_buf *out, int id);

#endif

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

#endif

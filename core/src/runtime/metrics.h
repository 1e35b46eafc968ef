/* metrics.h: Prometheus counters and histograms of this worker process. */
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

void th_metrics_render(th_buf *out);

/* Add samples rendered by a folder above runtime/ (ws/, at start-up). */
void th_metrics_add_renderer(void (*render)(th_buf *out));

#endif

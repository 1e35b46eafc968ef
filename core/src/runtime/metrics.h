/* metrics.h: Prometheus counters and histograms of this worker process. */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <stdint.h>

#include "log.h"

void th_metrics_request(const char *route, const char *method, int status, uint64_t duration_ns);
void th_metrics_render(th_buf *out);

#endif

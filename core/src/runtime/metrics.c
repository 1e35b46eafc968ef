/* metrics.c: request counters by route, method and status; a latency histogram
 * by route; pool gauges (set by the pg primitive); Lua memory per bundle state.
 * Rendered as Prometheus text on GET /metrics. Numbers are per worker process:
 * each sample carries a `worker` label (the pid) so a scrape of several workers
 * can be summed. Route labels are declared patterns, never raw paths, so the
 * number of series stays bounded. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB (sizeof bounds / sizeof bounds[0])

typedef struct series {
  char *route;
  char method[8];
  int status;
  uint64_t count;
} series;

typedef struct hist {
  char *route;
  uint64_t buckets[NB];
  uint64_t count;
  double sum;
} hist;

static series *counters;
static int n_counters;
static hist *hists;
static int n_hists;
static int pool_in_use, pool_idle, pool_waiting;

void th_metrics_pool(int in_use, int idle, int waiting) {
  pool_in_use = in_use;
  pool_idle = idle;
  pool_waiting = waiting;
}

void th_metrics_request(const char *route, const char *method, int status, uint64_t duration_ns) {
  if (!route) route = "unmatched";
  series *s = NULL;
  for (int i = 0; i < n_counters; i++)
    if (counters[i].status == status && !strcmp(counters[i].method, method) &&
        !strcmp(counters[i].route, route)) {
      s = &counters[i];
      break;
    }
  if (!s) {
    counters = realloc(counters, sizeof *counters * (size_t)(n_counters + 1));
    if (!counters) abort();
    s = &counters[n_counters++];
    s->route = strdup(route);
    strncpy(s->method, method, sizeof s->method - 1);
    s->method[sizeof s->method - 1] = '\0';
    s->status = status;
    s->count = 0;
  }
  s->count++;
  hist *h = NULL;
  for (int i = 0; i < n_hists; i++)
    if (!strcmp(hists[i].route, route)) {
      h = &hists[i];
      break;
    }
  if (!h) {
    hists = realloc(hists, sizeof *hists * (size_t)(n_hists + 1));
    if (!hists) abort();
    h = &hists[n_hists++];
    memset(h, 0, sizeof *h);
    h->route = strdup(route);
  }
  double secs = (double)duration_ns / 1e9;
  for (size_t b = 0; b < NB; b++)
    if (secs <= bounds[b]) h->buckets[b]++;
  h->count++;
  h->sum += secs;
}

static void label(th_buf *out, const char *s) { th_buf_json_escape(out, s, strlen(s)); }

static void visit_state(const th_state *s, void *arg) {
  th_buf *out = arg;
  th_buf_printf(out, "todo_host_lua_memory_bytes{worker=\"%d\",bundle=\"", (int)getpid());
  label(out, s->name ? s->name : "script");
  th_buf_printf(out, "\",retired=\"%s\"} %zu\n", s->retired ? "true" : "false", s->mem_used);
}

void th_metrics_render(th_buf *out) {
  int pid = (int)getpid();
  th_buf_adds(out,
              "# HELP todo_host_http_requests_total HTTP requests by route, method and status.\n"
              "# TYPE todo_host_http_requests_total counter\n");
  for (int i = 0; i < n_counters; i++) {
    th_buf_printf(out, "todo_host_http_requests_total{worker=\"%d\",route=\"", pid);
    label(out, counters[i].route);
    th_buf_printf(out, "\",method=\"%s\",status=\"%d\"} %llu\n", counters[i].method,
                  counters[i].status, (unsigned long long)counters[i].count);
  }
  th_buf_adds(out, "# HELP todo_host_http_request_duration_seconds Time from the first byte of a "
                   "request to its response.\n"
                   "# TYPE todo_host_http_request_duration_seconds histogram\n");
  for (int i = 0; i < n_hists; i++) {
    hist *h = &hists[i];
    for (size_t b = 0; b < NB; b++) {
      th_buf_printf(out, "todo_host_http_request_duration_seconds_bucket{worker=\"%d\",route=\"",
                    pid);
      label(out, h->route);
      th_buf_printf(out, "\",le=\"%g\"} %llu\n", bounds[b], (unsigned long long)h->buckets[b]);
    }
    th_buf_printf(out, "todo_host_http_request_duration_seconds_bucket{worker=\"%d\",route=\"",
                  pid);
    label(out, h->route);
    th_buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
    th_buf_printf(out, "todo_host_http_request_duration_seconds_sum{worker=\"%d\",route=\"", pid);
    label(out, h->route);
    th_buf_printf(out, "\"} %.6f\n", h->sum);
    th_buf_printf(out, "todo_host_http_request_duration_seconds_count{worker=\"%d\",route=\"", pid);
    label(out, h->route);
    th_buf_printf(out, "\"} %llu\n", (unsigned long long)h->count);
  }
  th_buf_printf(out,
                "# HELP todo_host_pg_pool_connections Database pool connections by state.\n"
                "# TYPE todo_host_pg_pool_connections gauge\n"
                "todo_host_pg_pool_connections{worker=\"%d\",state=\"in_use\"} %d\n"
                "todo_host_pg_pool_connections{worker=\"%d\",state=\"idle\"} %d\n"
                "# HELP todo_host_pg_pool_waiting Units of work waiting for a pool connection.\n"
                "# TYPE todo_host_pg_pool_waiting gauge\n"
                "todo_host_pg_pool_waiting{worker=\"%d\"} %d\n",
                pid, pool_in_use, pid, pool_idle, pid, pool_waiting);
  th_buf_adds(out, "# HELP todo_host_lua_memory_bytes Memory held by each bundle's Lua state.\n"
                   "# TYPE todo_host_lua_memory_bytes gauge\n");
  th_states_visit(visit_state, out);
}

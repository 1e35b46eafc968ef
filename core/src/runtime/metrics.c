/* metrics.c: request counters by route, method and status; a latency histogram
 * by route; pool gauges (set by the pg primitive); Lua memory per bundle state.
 * Rendered as Prometheus text on GET /metrics. Numbers are per worker process:
 * each sample carries a `worker` label (the pid) so a scrape of several workers
 * can be summed. Route labels are declared patterns, never raw paths, so the
 * number of series stays bounded. */
#include "runtime/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/host_internal.h"

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB (sizeof bounds / sizeof bounds[0])

typedef struct series {
  int method_id; /* the server's method number, -1 for "-" */
  char method[8];
  int status;
  uint64_t count;
} series;

/* One route pattern's series: found by name once (when a route table is built),
 * then reached through the pointer the route keeps. Never freed: the number of
 * patterns is bounded by the manifests, and counters outlive reloads. */
struct th_metrics_route {
  char *route;
  series *counters;
  int n_counters;
  uint64_t buckets[NB];
  uint64_t count;
  double sum;
};

static th_metrics_route **routes;
static int n_routes;
static int pool_in_use, pool_idle, pool_waiting;

void th_metrics_pool(int in_use, int idle, int waiting) {
  pool_in_use = in_use;
  pool_idle = idle;
  pool_waiting = waiting;
}

th_metrics_route *th_metrics_route_get(const char *pattern) {
  for (int i = 0; i < n_routes; i++)
    if (!strcmp(routes[i]->route, pattern)) return routes[i];
  routes = realloc(routes, sizeof *routes * (size_t)(n_routes + 1));
  th_metrics_route *m = calloc(1, sizeof *m);
  if (!routes || !m || !(m->route = strdup(pattern))) abort();
  return routes[n_routes++] = m;
}

void th_metrics_request(th_metrics_route *m, int method_id, const char *method, int status,
                        uint64_t duration_ns) {
  series *s = NULL;
  for (int i = 0; i < m->n_counters; i++)
    if (m->counters[i].status == status && m->counters[i].method_id == method_id) {
      s = &m->counters[i];
      break;
    }
  if (!s) {
    m->counters = realloc(m->counters, sizeof *m->counters * (size_t)(m->n_counters + 1));
    if (!m->counters) abort();
    s = &m->counters[m->n_counters++];
    s->method_id = method_id;
    snprintf(s->method, sizeof s->method, "%s", method);
    s->status = status;
    s->count = 0;
  }
  s->count++;
  double secs = (double)duration_ns / 1e9;
  for (size_t b = 0; b < NB; b++)
    if (secs <= bounds[b]) m->buckets[b]++;
  m->count++;
  m->sum += secs;
}

static void label(th_buf *out, const char *s) { th_buf_json_escape(out, s, strlen(s)); }

static void visit_state(const th_state *s, void *arg) {
  th_buf *out = arg;
  th_buf_printf(out, "todo_host_lua_memory_bytes{worker=\"%d\",bundle=\"", (int)getpid());
  label(out, s->name ? s->name : "script");
  th_buf_printf(out, "\",retired=\"%s\"} %zu\n", s->retired ? "true" : "false", s->mem_used);
}

/* Samples of folders above runtime/ (ws/), added at start-up. */
#define MAX_RENDERERS 4
static void (*renderers[MAX_RENDERERS])(th_buf *out);
static int n_renderers;

void th_metrics_add_renderer(void (*render)(th_buf *out)) {
  for (int i = 0; i < n_renderers; i++)
    if (renderers[i] == render) return;
  if (n_renderers == MAX_RENDERERS) abort(); /* a programming error: raise MAX_RENDERERS */
  renderers[n_renderers++] = render;
}

void th_metrics_render(th_buf *out) {
  int pid = (int)getpid();
  for (int i = 0; i < n_renderers; i++)
    renderers[i](out);
  th_buf_adds(out,
              "# HELP todo_host_http_requests_total HTTP requests by route, method and status.\n"
              "# TYPE todo_host_http_requests_total counter\n");
  for (int r = 0; r < n_routes; r++)
    for (int i = 0; i < routes[r]->n_counters; i++) {
      const series *c = &routes[r]->counters[i];
      th_buf_printf(out, "todo_host_http_requests_total{worker=\"%d\",route=\"", pid);
      label(out, routes[r]->route);
      th_buf_printf(out, "\",method=\"%s\",status=\"%d\"} %llu\n", c->method, c->status,
                    (unsigned long long)c->count);
    }
  th_buf_adds(out, "# HELP todo_host_http_request_duration_seconds Time from the first byte of a "
                   "request to its response.\n"
                   "# TYPE todo_host_http_request_duration_seconds histogram\n");
  for (int i = 0; i < n_routes; i++) {
    const th_metrics_route *h = routes[i];
    if (!h->count) continue;
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

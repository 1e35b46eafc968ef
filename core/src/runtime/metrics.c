/* metrics.c: request counters by route, method and status; a latency histogram
 * by route; pool gauges (set by the pg primitive); Lua memory per bundle state.
 * Rendered as Prometheus text on GET /metrics.
 *
 * One exposition for the whole process group: counters and histograms live in
 * one shared anonymous mapping that `run` makes before it forks its workers
 * (th_metrics_share), and every worker adds to them atomically, so whichever
 * worker answers a scrape reports the same, never-decreasing totals (a worker
 * that restarts keeps adding to them). Gauges are per process by nature: each
 * worker publishes its own (pool, Lua memory) in its slot of the same mapping,
 * and they are rendered with a `worker` label (the pid) for every live worker.
 * Folders above runtime/ (ws/) keep their counters and per-worker gauges in the
 * same mapping, by name (th_metrics_counter, th_metrics_gauge).
 * Route labels are declared patterns, never raw paths, so the number of series
 * stays bounded; the mapping is never freed (it lives as long as the processes).
 */
#include "runtime/metrics.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/host_internal.h"

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB (sizeof bounds / sizeof bounds[0])
#define MAX_SERIES 4096
#define MAX_HISTS 1024
#define MAX_WORKERS 256
#define MAX_BUNDLES 32
#define ROUTE_LEN 120
#define MAX_NAMED 48 /* counters of folders above runtime/ (ws/: 13) */
#define MAX_GAUGES 8
#define SAMPLE_LEN 96

/* Shared: one (route, method, status) counter. Entries below n_series are
 * complete (published with a release store of n_series, read with acquire). */
typedef struct shm_series {
  char route[ROUTE_LEN];
  char method[8];
  int method_id;
  int status;
  uint64_t count;
} shm_series;

typedef struct shm_hist {
  char route[ROUTE_LEN];
  uint64_t buckets[NB];
  uint64_t count;
  uint64_t sum_ns;
} shm_hist;

/* One worker's gauges; seq is odd while its owner rewrites them. */
typedef struct shm_worker {
  int pid;
  unsigned seq;
  int pool_in_use, pool_idle, pool_waiting;
  int n_bundles;
  int64_t gauges[MAX_GAUGES]; /* th_metrics_gauge_set */
  struct {
    char name[48];
    int retired;
    uint64_t bytes;
  } bundles[MAX_BUNDLES];
} shm_worker;

typedef struct shm {
  int lock; /* taken only to add an entry */
  int n_series, n_hists;
  uint64_t dropped; /* responses not counted because the tables were full */
  shm_series series[MAX_SERIES];
  shm_hist hists[MAX_HISTS];
  shm_worker workers[MAX_WORKERS];
  int n_named, n_gauges;
  struct {
    char sample[SAMPLE_LEN];
    uint64_t count;
  } named[MAX_NAMED];
  char gauge_names[MAX_GAUGES][SAMPLE_LEN];
} shm;

static shm *g;              /* the mapping */
static shm_worker *my_slot; /* this process's gauges, claimed on first use */

/* A per-process route handle: its shared histogram and a small cache of its
 * shared counters by (method, status), so a response costs no shared lookup. */
typedef struct local_series {
  int method_id, status;
  uint64_t *count;
} local_series;

struct th_metrics_route {
  char *route;
  shm_hist *hist;
  local_series *cache;
  int n_cache;
};

static th_metrics_route **routes;
static int n_routes;

int th_metrics_share(void) {
  if (g) return 0;
  void *p = mmap(NULL, sizeof(shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  g = p;
  return 0;
}

static shm *the_shm(void) {
  if (!g && th_metrics_share() < 0) abort(); /* scripts and tests: a private table */
  return g;
}

static void lock(shm *s) {
  while (__atomic_test_and_set(&s->lock, __ATOMIC_ACQUIRE))
    ;
}
static void unlock(shm *s) { __atomic_clear(&s->lock, __ATOMIC_RELEASE); }

static shm_hist *find_hist(shm *s, const char *route) {
  int n = __atomic_load_n(&s->n_hists, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++)
    if (!strncmp(s->hists[i].route, route, ROUTE_LEN - 1)) return &s->hists[i];
  return NULL;
}

static shm_hist *hist_for(const char *route) {
  shm *s = the_shm();
  shm_hist *h = find_hist(s, route);
  if (h) return h;
  lock(s);
  if (!(h = find_hist(s, route)) && s->n_hists < MAX_HISTS) {
    h = &s->hists[s->n_hists];
    snprintf(h->route, ROUTE_LEN, "%s", route);
    __atomic_store_n(&s->n_hists, s->n_hists + 1, __ATOMIC_RELEASE);
  }
  unlock(s);
  return h;
}

static shm_series *find_series(shm *s, const char *route, int method_id, int status) {
  int n = __atomic_load_n(&s->n_series, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    shm_series *e = &s->series[i];
    if (e->status == status && e->method_id == method_id &&
        !strncmp(e->route, route, ROUTE_LEN - 1))
      return e;
  }
  return NULL;
}

static uint64_t *counter_for(const char *route, int method_id, const char *method, int status) {
  shm *s = the_shm();
  shm_series *e = find_series(s, route, method_id, status);
  if (e) return &e->count;
  lock(s);
  if (!(e = find_series(s, route, method_id, status)) && s->n_series < MAX_SERIES) {
    e = &s->series[s->n_series];
    snprintf(e->route, ROUTE_LEN, "%s", route);
    snprintf(e->method, sizeof e->method, "%s", method);
    e->method_id = method_id;
    e->status = status;
    __atomic_store_n(&s->n_series, s->n_series + 1, __ATOMIC_RELEASE);
  }
  unlock(s);
  return e ? &e->count : NULL;
}

/* This process's gauge slot: a free one, or one whose process is gone. */
static shm_worker *slot(void) {
  int pid = (int)getpid();
  if (my_slot && my_slot->pid == pid) return my_slot;
  shm *s = the_shm();
  my_slot = NULL;
  for (int i = 0; i < MAX_WORKERS && !my_slot; i++) {
    shm_worker *w = &s->workers[i];
    int old = __atomic_load_n(&w->pid, __ATOMIC_ACQUIRE);
    if (old != 0 && (kill(old, 0) == 0 || old == pid)) continue;
    if (__atomic_compare_exchange_n(&w->pid, &old, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      my_slot = w;
  }
  return my_slot;
}

static void write_begin(shm_worker *w) { __atomic_add_fetch(&w->seq, 1, __ATOMIC_ACQ_REL); }
static void write_end(shm_worker *w) { __atomic_add_fetch(&w->seq, 1, __ATOMIC_RELEASE); }

void th_metrics_pool(int in_use, int idle, int waiting) {
  shm_worker *w = slot();
  if (!w) return;
  write_begin(w);
  w->pool_in_use = in_use;
  w->pool_idle = idle;
  w->pool_waiting = waiting;
  write_end(w);
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
  uint64_t *count = NULL;
  for (int i = 0; i < m->n_cache; i++)
    if (m->cache[i].status == status && m->cache[i].method_id == method_id) {
      count = m->cache[i].count;
      break;
    }
  if (!count && (count = counter_for(m->route, method_id, method, status))) {
    m->cache = realloc(m->cache, sizeof *m->cache * (size_t)(m->n_cache + 1));
    if (!m->cache) abort();
    m->cache[m->n_cache++] = (local_series){method_id, status, count};
  }
  if (!m->hist) m->hist = hist_for(m->route);
  if (!count || !m->hist) {
    __atomic_add_fetch(&the_shm()->dropped, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
  double secs = (double)duration_ns / 1e9;
  for (size_t b = 0; b < NB; b++)
    if (secs <= bounds[b]) __atomic_add_fetch(&m->hist->buckets[b], 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&m->hist->sum_ns, duration_ns, __ATOMIC_RELAXED);
  /* the count last: a scrape never sees more in +Inf than in the buckets below */
  __atomic_add_fetch(&m->hist->count, 1, __ATOMIC_RELEASE);
}

static void publish_state(const th_state *st, void *arg) {
  shm_worker *w = arg;
  if (w->n_bundles == MAX_BUNDLES) return;
  snprintf(w->bundles[w->n_bundles].name, sizeof w->bundles[0].name, "%s",
           st->name ? st->name : "script");
  w->bundles[w->n_bundles].retired = st->retired;
  w->bundles[w->n_bundles].bytes = st->mem_used;
  w->n_bundles++;
}

static uv_timer_t publish_timer;

static void on_publish(uv_timer_t *t) {
  (void)t;
  th_metrics_publish();
}

void th_metrics_start(void) {
  uv_timer_init(th_loop(), &publish_timer);
  uv_timer_start(&publish_timer, on_publish, 0, 1000);
  uv_unref((uv_handle_t *)&publish_timer); /* never keeps the loop alive */
}

#define MAX_PUBLISHERS 4
static void (*publishers[MAX_PUBLISHERS])(void);
static int n_publishers;

void th_metrics_add_publisher(void (*publish)(void)) {
  for (int i = 0; i < n_publishers; i++)
    if (publishers[i] == publish) return;
  if (n_publishers == MAX_PUBLISHERS) abort(); /* a programming error: raise MAX_PUBLISHERS */
  publishers[n_publishers++] = publish;
}

void th_metrics_publish(void) {
  shm_worker *w = slot();
  if (!w) return;
  write_begin(w);
  w->n_bundles = 0;
  th_states_visit(publish_state, w);
  for (int i = 0; i < n_publishers; i++) /* their th_metrics_gauge_set calls land inside */
    publishers[i]();
  write_end(w);
}

/* Only from a publisher: it runs inside th_metrics_publish's write section. */
void th_metrics_gauge_set(int id, int64_t value) {
  if (my_slot && id >= 0 && id < MAX_GAUGES) my_slot->gauges[id] = value;
}

uint64_t *th_metrics_counter(const char *sample) {
  shm *s = the_shm();
  uint64_t *found = NULL;
  lock(s);
  for (int i = 0; i < s->n_named && !found; i++)
    if (!strncmp(s->named[i].sample, sample, SAMPLE_LEN - 1)) found = &s->named[i].count;
  if (!found && s->n_named < MAX_NAMED) {
    snprintf(s->named[s->n_named].sample, SAMPLE_LEN, "%s", sample);
    found = &s->named[s->n_named++].count;
  }
  unlock(s);
  return found;
}

void th_metrics_add(uint64_t *counter, uint64_t n) {
  if (counter) __atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

uint64_t th_metrics_counter_value(const uint64_t *counter) {
  return counter ? __atomic_load_n(counter, __ATOMIC_RELAXED) : 0;
}

int th_metrics_gauge(const char *name) {
  shm *s = the_shm();
  int id = -1;
  lock(s);
  for (int i = 0; i < s->n_gauges && id < 0; i++)
    if (!strncmp(s->gauge_names[i], name, SAMPLE_LEN - 1)) id = i;
  if (id < 0 && s->n_gauges < MAX_GAUGES) {
    snprintf(s->gauge_names[s->n_gauges], SAMPLE_LEN, "%s", name);
    id = s->n_gauges++;
  }
  unlock(s);
  return id;
}

static void label(th_buf *out, const char *s) { th_buf_json_escape(out, s, strlen(s)); }

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* A consistent copy of one worker's gauges (retries while its owner writes). */
static int read_worker(const shm_worker *w, shm_worker *copy) {
  for (int tries = 0; tries < 1000; tries++) {
    unsigned seq = __atomic_load_n(&w->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) continue;
    memcpy(copy, w, sizeof *copy);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&w->seq, __ATOMIC_RELAXED) == seq) return 1;
  }
  return 0;
}

/* Consistent copies of every live worker's gauges, each with its pid. */
static int live_workers(shm *s, shm_worker *copies) {
  int nw = 0;
  for (int i = 0; i < MAX_WORKERS; i++) {
    int pid = __atomic_load_n(&s->workers[i].pid, __ATOMIC_ACQUIRE);
    if (pid == 0 || (pid != (int)getpid() && kill(pid, 0) != 0)) continue;
    if (read_worker(&s->workers[i], &copies[nw]) && copies[nw].pid == pid) nw++;
  }
  return nw;
}

void th_metrics_render_gauge(th_buf *out, int id) {
  static shm_worker copies[MAX_WORKERS];
  shm *s = the_shm();
  if (id < 0 || id >= MAX_GAUGES) return;
  int nw = live_workers(s, copies);
  for (int i = 0; i < nw; i++)
    th_buf_printf(out, "%s{worker=\"%d\"} %lld\n", s->gauge_names[id], copies[i].pid,
                  (long long)copies[i].gauges[id]);
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
  shm *s = the_shm();
  th_metrics_publish();                 /* this worker's gauges as of now */
  for (int i = 0; i < n_renderers; i++) /* ws/ and other folders above runtime/ */
    renderers[i](out);
  th_buf_adds(out, "# HELP todo_host_http_requests_total HTTP requests by route, method and status "
                   "(all workers).\n"
                   "# TYPE todo_host_http_requests_total counter\n");
  int n = __atomic_load_n(&s->n_series, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    const shm_series *c = &s->series[i];
    th_buf_adds(out, "todo_host_http_requests_total{route=\"");
    label(out, c->route);
    th_buf_printf(out, "\",method=\"%s\",status=\"%d\"} %llu\n", c->method, c->status,
                  (unsigned long long)load(&c->count));
  }
  th_buf_adds(out, "# HELP todo_host_http_request_duration_seconds Time from the first byte of a "
                   "request to its response (all workers).\n"
                   "# TYPE todo_host_http_request_duration_seconds histogram\n");
  n = __atomic_load_n(&s->n_hists, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    const shm_hist *h = &s->hists[i];
    /* the count first (acquire): every bucket read after it holds at least as much */
    uint64_t count = __atomic_load_n(&h->count, __ATOMIC_ACQUIRE);
    if (!count) continue;
    uint64_t sum_ns = load(&h->sum_ns);
    for (size_t b = 0; b < NB; b++) {
      uint64_t v = load(&h->buckets[b]);
      th_buf_adds(out, "todo_host_http_request_duration_seconds_bucket{route=\"");
      label(out, h->route);
      th_buf_printf(out, "\",le=\"%g\"} %llu\n", bounds[b],
                    (unsigned long long)(v < count ? v : count));
    }
    th_buf_adds(out, "todo_host_http_request_duration_seconds_bucket{route=\"");
    label(out, h->route);
    th_buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)count);
    th_buf_adds(out, "todo_host_http_request_duration_seconds_sum{route=\"");
    label(out, h->route);
    th_buf_printf(out, "\"} %.6f\n", (double)sum_ns / 1e9);
    th_buf_adds(out, "todo_host_http_request_duration_seconds_count{route=\"");
    label(out, h->route);
    th_buf_printf(out, "\"} %llu\n", (unsigned long long)count);
  }
  th_buf_printf(out,
                "# HELP todo_host_metrics_dropped_total Responses not counted (series table "
                "full).\n"
                "# TYPE todo_host_metrics_dropped_total counter\n"
                "todo_host_metrics_dropped_total %llu\n",
                (unsigned long long)load(&s->dropped));

  /* Gauges of every live worker, each with its pid. */
  static shm_worker copies[MAX_WORKERS];
  int nw = live_workers(s, copies);
  th_buf_adds(out, "# HELP todo_host_pg_pool_connections Database pool connections by state.\n"
                   "# TYPE todo_host_pg_pool_connections gauge\n");
  for (int i = 0; i < nw; i++)
    th_buf_printf(out,
                  "todo_host_pg_pool_connections{worker=\"%d\",state=\"in_use\"} %d\n"
                  "todo_host_pg_pool_connections{worker=\"%d\",state=\"idle\"} %d\n",
                  copies[i].pid, copies[i].pool_in_use, copies[i].pid, copies[i].pool_idle);
  th_buf_adds(out, "# HELP todo_host_pg_pool_waiting Units of work waiting for a pool connection.\n"
                   "# TYPE todo_host_pg_pool_waiting gauge\n");
  for (int i = 0; i < nw; i++)
    th_buf_printf(out, "todo_host_pg_pool_waiting{worker=\"%d\"} %d\n", copies[i].pid,
                  copies[i].pool_waiting);
  th_buf_adds(out, "# HELP todo_host_lua_memory_bytes Memory held by each bundle's Lua state.\n"
                   "# TYPE todo_host_lua_memory_bytes gauge\n");
  for (int i = 0; i < nw; i++)
    for (int b = 0; b < copies[i].n_bundles && b < MAX_BUNDLES; b++) {
      copies[i].bundles[b].name[sizeof copies[i].bundles[b].name - 1] = '\0';
      th_buf_printf(out, "todo_host_lua_memory_bytes{worker=\"%d\",bundle=\"", copies[i].pid);
      label(out, copies[i].bundles[b].name);
      th_buf_printf(out, "\",retired=\"%s\"} %llu\n",
                    copies[i].bundles[b].retired ? "true" : "false",
                    (unsigned long long)copies[i].bundles[b].bytes);
    }
}

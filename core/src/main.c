/* main.c: the todo-host command line and process model.
 *
 *   todo-host run [flags] BUNDLE_DIR...     serve bundles (master + workers)
 *   todo-host migrate BUNDLE_DIR...         apply the bundles' SQL migrations
 *   todo-host script FILE [ARGS...]         run a Lua file with the primitives
 *   todo-host token --sub USER [--ttl N]    print a development HS256 token
 *
 * With WORKERS > 1 the master forks that many workers, each with its own loop
 * and Lua states, all listening on the port with SO_REUSEPORT; the master only
 * forwards signals and replaces workers that die. main.c owns the loop of each
 * process and the shutdown order: stop listening, drain, close the database
 * pool, retire the Lua states, close the remaining handles, close the loop.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "prim/jwt.h"
#include "prim/pg/pg.h"
#include "prim/primitives.h"
#include "runtime/config.h"
#include "runtime/metrics.h"
#include "runtime/migrate.h"
#include "runtime/watch.h"
#include "ws/ws_host.h"

static char **bundle_dirs;
static int n_bundles;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t drain_timer;
static int shutting_down;

static void usage(FILE *f) {
  fprintf(
      f,
      "todo-host %s: a libuv/Lua runtime for service bundles\n\n"
      "usage:\n"
      "  todo-host run [--watch] [--port N] [--workers N] BUNDLE_DIR...\n"
      "  todo-host migrate BUNDLE_DIR...\n"
      "  todo-host script FILE [ARGS...]\n"
      "  todo-host token --sub USER [--ttl SECONDS]\n"
      "  todo-host events dead-letters [GROUP] | retry ID | lag\n"
      "  todo-host COMMAND --help   (the usage of one command)\n"
      "  todo-host --help | --version\n\n"
      "settings (environment; the flag of the same name wins):\n"
      "  PORT (8080)  HOST (0.0.0.0)  WORKERS (CPU count)  DATABASE_URL  LOG_LEVEL (info)\n"
      "  MAX_BODY_BYTES (1048576)  MAX_HEADER_BYTES (16384)  HEADER_TIMEOUT_MS (10000)\n"
      "  MAX_PENDING_OUTPUT_BYTES (262144: unsent answers before a connection is not read)\n"
      "  BODY_TIMEOUT_MS (30000)  KEEPALIVE_TIMEOUT_MS (60000)  MAX_CONNECTIONS (10000)\n"
      "  SEND_TIMEOUT_MS (30000) MIN_SEND_RATE_BYTES_PER_SECOND (1024): a client with answers\n"
      "  waiting that takes less than the rate's worth in any SEND_TIMEOUT_MS is closed\n"
      "  DRAIN_IDLE_GRACE_MS (1000: on SIGTERM, idle keep-alive connections may send one more\n"
      "  request, answered with Connection: close)\n"
      "  DRAIN_TIMEOUT_MS (20000)  CPU_BUDGET_MS (1000)  BUNDLE_MEMORY_MB (256)  ACCESS_LOG (on)\n"
      "  LUA_GC (generational | incremental)\n"
      "  TRUSTED_PROXIES (none: addresses/CIDR blocks whose X-Forwarded-For names the client)\n"
      "  PG_POOL_SIZE (8 per worker)  PG_POOL_TIMEOUT_MS (5000)  PG_PIPELINE_DEPTH (1: queries\n"
      "  in flight per shared connection; more pipelines standalone queries)  PG_PIPELINE_CORK "
      "(on)\n"
      "  PG_PLAN_CACHE_MODE (auto | force_generic_plan | force_custom_plan)\n"
      "  AUTH_JWKS_URL | AUTH_JWKS_FILE  AUTH_ISSUER  AUTH_AUDIENCE  AUTH_DEV_SECRET "
      "(development)\n"
      "  BUS (postgres | dapr)  API_CURSOR_SECRET (required with BUS=dapr)\n"
      "  DATABASE_URL_SECRET (BUS=dapr: the secret holding the URL, read at start-up from\n"
      "  DAPR_SECRETSTORE (secretstore); DATABASE_URL_SECRET_KEY; DAPR_WAIT_SECONDS (30))\n"
      "  TODO_LUA_ROOT (the shared lua/ directory; found next to the bundles by default)\n",
      TH_VERSION);
}

/* `todo-host COMMAND --help`: the usage of one command, on stdout. */
static int command_help(const char *cmd) {
  const char *text = NULL;
  if (!strcmp(cmd, "run"))
    text = "usage: todo-host run [--watch] [--port N] [--workers N] [--SETTING VALUE] "
           "BUNDLE_DIR...\n"
           "  Serve the bundles (each a directory with a service.lua) on PORT (8080).\n"
           "  --watch reloads the bundles when their files change (make run WATCH=1).\n"
           "  Every setting of `todo-host --help` is also a flag: --max-body 4096, ...\n";
  else if (!strcmp(cmd, "migrate"))
    text = "usage: todo-host migrate BUNDLE_DIR...\n"
           "  Apply each bundle's migrations/NNN_name.sql not applied yet (DATABASE_URL).\n";
  else if (!strcmp(cmd, "script"))
    text = "usage: todo-host script FILE [ARGS...]\n"
           "  Run a Lua file with every primitive (pg, http, timer, ...); ARGS are arg[1..].\n"
           "  DATABASE_URL is used by pg. Exit status 0, or 1 when the script failed.\n";
  else if (!strcmp(cmd, "token"))
    text = "usage: todo-host token --sub USER [--ttl SECONDS]\n"
           "  Print a development HS256 token for USER, valid for SECONDS (3600).\n"
           "  Needs AUTH_DEV_SECRET (make run keeps it in .data/dev-secret):\n"
           "    AUTH_DEV_SECRET=$(cat .data/dev-secret) todo-host token --sub me\n"
           "  AUTH_ISSUER and AUTH_AUDIENCE, when set, go into the token.\n";
  if (!text) return -1;
  fputs(text, stdout);
  return 0;
}

/* Anywhere among a command's flags; for `script`, only in place of the FILE (what
 * follows it is the script's own arguments). */
static int wants_help(int argc, char **argv) {
  int last = !strcmp(argv[1], "script") ? (argc > 3 ? 3 : argc) : argc;
  for (int i = 2; i < last; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

/* lua/ beside services/: <bundle>/../../lua, else the installed share dir. */
static void find_lua_root(const char *first_bundle) {
  const char *env = getenv("TODO_LUA_ROOT");
  char path[PATH_MAX], real[PATH_MAX];
  struct stat st;
  if (env && *env) {
    th_set_lua_root(env);
    return;
  }
  if (first_bundle) {
    snprintf(path, sizeof path, "%s/../../lua", first_bundle);
    if (realpath(path, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
      th_set_lua_root(real);
      return;
    }
  }
  if (getcwd(path, sizeof path)) {
    strncat(path, "/lua", sizeof path - strlen(path) - 1);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      th_set_lua_root(path);
      return;
    }
  }
  th_set_lua_root(TH_SHARE_DIR "/lua");
}

/* ---- worker ------------------------------------------------------------ */

/* /readyz: the database counts when this process has one configured (asking
 * the pool otherwise would start it for nothing). */
static int database_ready(void) {
  return th_cfg.database_url && *th_cfg.database_url ? th_pg_ready() : 1;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int conns_drained;

static void finish_shutdown(void) {
  static int finished;
  if (finished++) return;
  uv_timer_stop(&drain_timer);
  th_ws_shutdown();
  th_primitives_shutdown();
  th_server_set_generation(NULL);
  th_watch_stop();
  th_log(NULL, "info", "stopped");
  th_log_detach_loop();
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
  /* Closing the handles restored the default actions; a second SIGTERM during
   * the last steps must not turn a clean exit into a kill. */
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  uv_close((uv_handle_t *)&drain_timer, NULL);
}

static void on_drain_timeout(uv_timer_t *t) {
  (void)t;
  th_log(NULL, "warn", "drain timeout: %d connections still open, closing them",
         th_server_active_connections());
  th_log_flush();
  /* In-flight handlers cannot be finished safely from here; leave at once. */
  _exit(0);
}

/* Shutdown finishes when the connections are drained and the background
 * tasks have returned, whichever comes last. */
static void maybe_finish(void) {
  if (conns_drained && th_jobs_active() == 0 && th_ws_open_connections() == 0) finish_shutdown();
}

static void on_conns_drained(void) {
  conns_drained = 1;
  maybe_finish();
}

static void begin_shutdown(void) {
  if (shutting_down) return;
  shutting_down = 1;
  th_log(NULL, "info", "draining: %d connections open, %d background tasks",
         th_server_active_connections(), th_jobs_active());
  if (th_cfg.drain_timeout_ms > 0)
    uv_timer_start(&drain_timer, on_drain_timeout, (uint64_t)th_cfg.drain_timeout_ms, 0);
  th_jobs_on_idle(maybe_finish);
  th_states_signal_stop();
  th_ws_drain(maybe_finish);
  th_server_drain(on_conns_drained);
}

static void reload(void) {
  th_generation *g = th_generation_load(bundle_dirs, n_bundles);
  if (g && th_server_set_generation(g) < 0) {
    th_generation_retire(g);
    g = NULL;
  }
  if (!g) {
    th_log(NULL, "error", "reload failed; still serving the previous bundles");
    return;
  }
  th_generation_start(g);
  th_log(NULL, "info", "reloaded %d bundles", n_bundles);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  if (signum == SIGHUP) {
    if (!shutting_down) reload();
    return;
  }
  begin_shutdown();
}

static int worker_main(void) {
  th_loop_init();
  th_metrics_start();
  th_server_set_ready_probe(database_ready);
  th_log_set_level(th_cfg.log_level);
  th_log_attach_loop();
  th_generation *g = th_generation_load(bundle_dirs, n_bundles);
  if (!g) return 2;
  int rc = th_server_listen(th_cfg.host, th_cfg.port, 1);
  if (rc < 0) {
    fprintf(stderr, "todo-host: cannot listen on %s:%d: %s\n", th_cfg.host, th_cfg.port,
            uv_strerror(rc));
    return 2;
  }
  if (th_server_set_generation(g) < 0) return 2;
  th_generation_start(g);
  uv_signal_init(th_loop(), &sig_term);
  uv_signal_init(th_loop(), &sig_int);
  uv_signal_init(th_loop(), &sig_hup);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_hup, on_signal, SIGHUP);
  uv_timer_init(th_loop(), &drain_timer);
  if (th_cfg.watch) th_watch_start(bundle_dirs, n_bundles, th_lua_root(), reload);
  th_log(NULL, "info", "listening on http://%s:%d with %d bundles", th_cfg.host, th_cfg.port,
         n_bundles);
  uv_run(th_loop(), UV_RUN_DEFAULT);
  uv_walk(th_loop(), close_walk, NULL);
  uv_run(th_loop(), UV_RUN_DEFAULT);
  rc = uv_loop_close(th_loop());
  th_log_flush();
  if (rc != 0) {
    fprintf(stderr, "todo-host: loop did not close cleanly: %s\n", uv_strerror(rc));
    return 1;
  }
  return 0;
}

/* ---- master ------------------------------------------------------------ */

static pid_t spawn_worker(sigset_t *old) {
  pid_t pid = fork();
  if (pid < 0) {
    perror("todo-host: fork");
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigprocmask(SIG_SETMASK, old, NULL);
    _exit(worker_main());
  }
  return pid;
}

static int master_main(void) {
  int n = th_cfg.workers;
  pid_t *pids = calloc((size_t)n, sizeof(pid_t));
  time_t *started = calloc((size_t)n, sizeof(time_t));
  if (!pids || !started) abort();
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old);
  for (int i = 0; i < n; i++) {
    pids[i] = spawn_worker(&old);
    started[i] = time(NULL);
  }
  int stopping = 0, alive = n, exit_code = 0, quick_deaths = 0;
  while (alive > 0) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
      if (sig != SIGHUP) stopping = 1;
      for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], sig == SIGHUP ? SIGHUP : SIGTERM);
      continue;
    }
    /* SIGCHLD: reap every child that ended. */
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (int i = 0; i < n; i++) {
        if (pids[i] != pid) continue;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pids[i] = 0;
        alive--;
        if (stopping) {
          if (code != 0) exit_code = code;
          break;
        }
        if (code == 2 || ++quick_deaths > 5 * n) {
          /* A start-up failure (bad bundle, port taken) will not heal itself. */
          fprintf(stderr, "todo-host: worker %d exited with %d; stopping\n", (int)pid, code);
          stopping = 1;
          exit_code = code ? code : 1;
          for (int k = 0; k < n; k++)
            if (pids[k] > 0) kill(pids[k], SIGTERM);
          break;
        }
        th_log(NULL, "error", "worker %d exited with %d; starting another", (int)pid, code);
        if (time(NULL) - started[i] > 10) quick_deaths = 0;
        pids[i] = spawn_worker(&old);
        started[i] = time(NULL);
        if (pids[i] > 0) alive++;
        break;
      }
    }
  }
  free(pids);
  free(started);
  return exit_code;
}

/* ---- commands ---------------------------------------------------------- */

static int parse_run_args(int argc, char **argv, int first) {
  bundle_dirs = calloc((size_t)argc, sizeof(char *));
  if (!bundle_dirs) abort();
  for (int i = first; i < argc; i++) {
    int used = th_config_flag(argc, argv, i);
    if (used < 0) return -1;
    if (used > 0) {
      i += used - 1;
      continue;
    }
    if (argv[i][0] == '-' && argv[i][1] == '-') {
      fprintf(stderr, "todo-host: unknown flag %s (see todo-host --help)\n", argv[i]);
      return -1;
    }
    bundle_dirs[n_bundles++] = argv[i];
  }
  if (n_bundles == 0) {
    fprintf(stderr, "todo-host: name at least one bundle directory (e.g. services/api)\n");
    return -1;
  }
  return 0;
}

static int cmd_run(int argc, char **argv) {
  if (parse_run_args(argc, argv, 2) < 0) return 2;
  if (th_cfg.port == 0 && th_cfg.workers > 1) {
    fprintf(stderr, "todo-host: PORT=0 needs WORKERS=1 (each worker would pick its own port)\n");
    return 2;
  }
  find_lua_root(bundle_dirs[0]);
  th_log_set_level(th_cfg.log_level);
  if (th_http_trusted_proxies_init(th_cfg.trusted_proxies) < 0) return 2;
  if (getenv("AUTH_DEV_SECRET"))
    th_log(NULL, "warn", "AUTH_DEV_SECRET is set: development HS256 tokens are accepted");
  /* Once, in the master, before any worker or pool exists: the database URL may
   * come from the Dapr secrets API (DATABASE_URL_SECRET). */
  if (th_config_resolve_secrets() < 0) return 2;
  if (getenv("DATABASE_URL_SECRET"))
    th_log(NULL, "info", "database URL read from secret %s of the Dapr secret store",
           getenv("DATABASE_URL_SECRET"));
  /* Counters shared by every worker: one exposition on /metrics. */
  if (th_metrics_share() < 0) {
    fprintf(stderr, "todo-host: cannot map the shared metrics table\n");
    return 2;
  }
  /* Load every bundle once before forking so a broken manifest stops start-up
   * with one line, not one line per worker. */
  th_loop_init();
  th_generation *g = th_generation_load(bundle_dirs, n_bundles);
  if (!g) return 2;
  th_router *routes = th_router_build(g);
  th_router_free(routes);
  th_generation_retire(g);
  uv_loop_close(th_loop());
  if (!routes) return 2;
  if (th_cfg.workers == 1) return worker_main();
  return master_main();
}

static int cmd_migrate(int argc, char **argv) {
  if (parse_run_args(argc, argv, 2) < 0) return 2;
  const char *url = th_cfg.database_url;
  if (!url) {
    fprintf(stderr, "todo-host: migrate needs DATABASE_URL\n");
    return 2;
  }
  return th_migrate(url, bundle_dirs, n_bundles) == 0 ? 0 : 1;
}

static int script_status = 0;
static int script_done = 0;

static void script_jobs_idle(void) {
  if (script_done) th_primitives_shutdown();
}

static void on_script_done(th_ctx *ctx, int status, int nres) {
  (void)nres;
  if (status != LUA_OK) {
    fprintf(stderr, "todo-host: %s\n", lua_tostring(ctx->co, -1));
    script_status = 1;
  }
  script_done = 1;
  th_state *s = ctx->state;
  th_ctx_release(ctx);
  /* Background tasks the script spawned are asked to stop and awaited. */
  th_state_signal_stop(s);
  th_jobs_on_idle(script_jobs_idle);
  if (th_jobs_active() == 0) th_primitives_shutdown();
}

/* `todo-host script FILE ARGS...` runs a file; `todo-host NAME ARGS...` runs
 * the embedded tool core/lua/cli_NAME.lua (e.g. `todo-host events ...`). */
static int run_script(int argc, char **argv, const char *tool) {
  find_lua_root(NULL);
  th_log_set_level(th_cfg.log_level);
  th_loop_init();
  th_log_attach_loop();
  char err[512];
  th_state *s = th_state_new(TH_STATE_SCRIPT, NULL, 0, err, sizeof err);
  if (!s) {
    fprintf(stderr, "todo-host: %s\n", err);
    return 2;
  }
  lua_State *L = s->L;
  lua_createtable(L, argc, 1);
  for (int i = 2; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 2);
  }
  lua_setglobal(L, "arg");
  th_ctx *ctx = th_ctx_new(s, TH_CTX_SCRIPT);
  ctx->done = on_script_done;
  if (tool) {
    /* require(tool) returns the tool's main function */
    lua_getglobal(ctx->co, "require");
    lua_pushstring(ctx->co, tool);
    if (lua_pcall(ctx->co, 1, 1, 0) != LUA_OK || !lua_isfunction(ctx->co, -1)) {
      fprintf(stderr, "todo-host: %s\n",
              lua_isstring(ctx->co, -1) ? lua_tostring(ctx->co, -1) : "tool is not a function");
      return 2;
    }
  } else if (luaL_loadfile(ctx->co, argv[2]) != LUA_OK) {
    fprintf(stderr, "todo-host: %s\n", lua_tostring(ctx->co, -1));
    return 2;
  }
  for (int i = 3; i < argc; i++)
    lua_pushstring(ctx->co, argv[i]);
  th_ctx_start(ctx, argc - 3);
  uv_run(th_loop(), UV_RUN_DEFAULT);
  if (!script_done) {
    fprintf(stderr, "todo-host: the script is waiting on something that will never answer\n");
    script_status = 1;
  }
  th_log_detach_loop();
  uv_walk(th_loop(), close_walk, NULL);
  uv_run(th_loop(), UV_RUN_DEFAULT);
  th_state_free(s);
  uv_loop_close(th_loop());
  return script_status;
}

static int cmd_token(int argc, char **argv) {
  const char *sub = NULL;
  long ttl = 3600;
  for (int i = 2; i < argc; i++) {
    if ((!strcmp(argv[i], "--sub") || !strcmp(argv[i], "--ttl")) && i + 1 == argc) {
      fprintf(stderr, "todo-host token: %s needs a value (see todo-host token --help)\n", argv[i]);
      return 2;
    }
    if (!strcmp(argv[i], "--sub")) {
      sub = argv[++i];
    } else if (!strcmp(argv[i], "--ttl")) {
      char *end;
      ttl = strtol(argv[++i], &end, 10);
      if (*end || ttl <= 0) {
        fprintf(stderr, "todo-host: --ttl expects a positive number of seconds\n");
        return 2;
      }
    } else {
      fprintf(stderr, "todo-host token: unexpected argument %s (see todo-host token --help)\n",
              argv[i]);
      return 2;
    }
  }
  const char *secret = getenv("AUTH_DEV_SECRET");
  int missing = 0;
  if (!sub || !*sub) {
    fprintf(stderr, "todo-host token: missing --sub USER: the user id the token is for\n");
    missing = 1;
  }
  if (!secret || !*secret) {
    fprintf(stderr,
            "todo-host token: missing AUTH_DEV_SECRET: the development secret that signs the "
            "token\n"
            "  (make run keeps it in .data/dev-secret: AUTH_DEV_SECRET=$(cat .data/dev-secret) "
            "todo-host token --sub me)\n");
    missing = 1;
  }
  if (missing) return 2;
  /* AUTH_AUDIENCE may list several accepted audiences; a token carries the first. */
  char audience[256] = "";
  const char *aud = getenv("AUTH_AUDIENCE");
  if (aud) snprintf(audience, sizeof audience, "%.*s", (int)strcspn(aud, ","), aud);
  char *tok = th_jwt_mint_hs256(secret, sub, ttl, getenv("AUTH_ISSUER"), aud ? audience : NULL);
  if (!tok) {
    fprintf(stderr, "todo-host: could not make a token\n");
    return 1;
  }
  printf("%s\n", tok);
  free(tok);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  atexit(th_log_flush);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("todo-host %s\n", TH_VERSION);
    return 0;
  }
  if (wants_help(argc, argv) && command_help(argv[1]) == 0) return 0;
  if (th_config_from_env() < 0) return 2;
  th_ws_register();
  th_host_set_preload(th_primitives_preload);
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(argv[1], "run")) return cmd_run(argc, argv);
  if (!strcmp(argv[1], "migrate")) return cmd_migrate(argc, argv);
  if (!strcmp(argv[1], "script")) {
    if (argc < 3) {
      fprintf(stderr, "todo-host: script needs a FILE\n");
      return 2;
    }
    return run_script(argc, argv, NULL);
  }
  if (!strcmp(argv[1], "token")) return cmd_token(argc, argv);
  char tool[64];
  snprintf(tool, sizeof tool, "cli_%s", argv[1]);
  if (th_embedded_exists(tool)) {
    /* shift so that arg[0] is the tool name, as for a script file */
    char **args = calloc((size_t)argc + 2, sizeof(char *));
    if (!args) abort();
    args[0] = argv[0];
    args[1] = "script";
    for (int i = 1; i < argc; i++)
      args[i + 1] = argv[i];
    int rc = run_script(argc + 1, args, tool);
    free(args);
    return rc;
  }
  fprintf(stderr, "todo-host: unknown command '%s' (see todo-host --help)\n", argv[1]);
  return 2;
}

/* watch.c: development reload. Every 500 ms the newest modification time of
 * the .lua files under the bundle directories and lua/ is compared with the
 * last one seen; a change calls the reload callback. Polling is used because
 * inotify cannot watch a tree recursively and editors replace files in ways
 * that lose watches; at development sizes a scan costs microseconds. */
#include "runtime/watch.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/host.h"

static uv_timer_t timer;
static int active;
static char **watch_dirs;
static int n_dirs;
static const char *root;
static void (*callback)(void);
static struct timespec last_seen;

static void newest(const char *dir, struct timespec *best, int depth) {
  DIR *d = opendir(dir);
  if (!d || depth > 8) {
    if (d) closedir(d);
    return;
  }
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      newest(path, best, depth + 1);
    } else {
      size_t len = strlen(e->d_name);
      if (len < 4 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
      if (st.st_mtim.tv_sec > best->tv_sec ||
          (st.st_mtim.tv_sec == best->tv_sec && st.st_mtim.tv_nsec > best->tv_nsec))
        *best = st.st_mtim;
    }
  }
  closedir(d);
}

static struct timespec scan(void) {
  struct timespec best = {0, 0};
  for (int i = 0; i < n_dirs; i++)
    newest(watch_dirs[i], &best, 0);
  if (root) newest(root, &best, 0);
  return best;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  struct timespec now = scan();
  if (now.tv_sec != last_seen.tv_sec || now.tv_nsec != last_seen.tv_nsec) {
    last_seen = now;
    th_log(NULL, "info", "a bundle file changed: reloading");
    callback();
  }
}

void th_watch_start(char **dirs, int n, const char *lua_root, void (*on_change)(void)) {
  watch_dirs = dirs;
  n_dirs = n;
  root = lua_root;
  callback = on_change;
  last_seen = scan();
  uv_timer_init(th_loop(), &timer);
  uv_timer_start(&timer, on_tick, 500, 500);
  active = 1;
}

void th_watch_stop(void) {
  if (!active) return;
  uv_close((uv_handle_t *)&timer, NULL);
  active = 0;
}

/* watch.h: `run --watch`: reload the bundles when a file under them changes. */
#ifndef TH_WATCH_H
#define TH_WATCH_H

void th_watch_start(char **dirs, int n, const char *lua_root, void (*on_change)(void));
void th_watch_stop(void);

#endif

/* ws/ws_host.h: what the rest of the host calls of the WebSocket primitive (ws/ws.h
 * has the internals). Kept free of libwebsockets' headers. */
#ifndef TH_WS_HOST_H
#define TH_WS_HOST_H

#include <lua.h>

#include "base/buf.h"
#include "runtime/host_internal.h"

/* main.c, at start-up: adds the Lua module "ws.core" to the primitives and the ws_*
 * samples to /metrics (ws/ sits above prim/ and runtime/, which do not call it). */
void th_ws_register(void);
int luaopen_th_ws_core(lua_State *L);
/* main.c, at the start of shutdown: close every connection with 1001; on_closed runs
 * when the last one is gone (shutdown waits for th_ws_open_connections() == 0). */
void th_ws_drain(void (*on_closed)(void));
int th_ws_open_connections(void);
/* main.c, at the end of shutdown (before the primitives'): destroy the lws context. */
void th_ws_shutdown(void);
/* The ws_* samples of /metrics. */
void th_ws_metrics_render(th_buf *out);

#endif

/* ws/ws_host.h: what the rest of the host calls of the WebSocket primitive (ws/ws.h
 * has the internals). Kept free of libwebsockets' headers. */
#ifndef TH_WS_HOST_H
#define TH_WS_HOST_H

#include <lua.h>

#include "host_internal.h"
#include "log.h"

/* Lua module "ws.core" (primitives.c). */
int luaopen_th_ws_core(lua_State *L);
/* bundle.c, while loading a manifest (at the top of s->L): turns `websocket = {...}`
 * into its handshake route. Returns 0, or -1 with a message in err. */
int th_ws_manifest(th_state *s, const char *file, char *err, size_t errlen);
/* main.c, at the start of shutdown: close every connection with 1001; on_closed runs
 * when the last one is gone (shutdown waits for th_ws_open_connections() == 0). */
void th_ws_drain(void (*on_closed)(void));
int th_ws_open_connections(void);
/* primitives.c, at the end of shutdown: destroy the lws context. */
void th_ws_shutdown(void);
/* metrics.c: the ws_* samples. */
void th_ws_metrics_render(th_buf *out);

#endif

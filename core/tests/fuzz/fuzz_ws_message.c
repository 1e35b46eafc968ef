/* fuzz_ws_message.c: libFuzzer target for WebSocket client messages into the bundle
 * (services/websocket's on_message, with the event log and the connection as doubles):
 * the driver is core/tests/fuzz/lua/ws_message.lua, the harness lua_target.h. Seeds in
 * core/tests/fuzz/corpus/ws_message/. */
#include "ws/ws_host.h"

/* The host's `ws.core` module, as main.c registers it (the manifest's ws.define needs it). */
#define FUZZ_BEFORE_STATE() th_ws_register()
#define FUZZ_DRIVER "ws_message"
#define FUZZ_BUNDLE "services/websocket"
#include "lua_target.h"

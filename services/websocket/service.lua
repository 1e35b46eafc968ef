-- services/websocket: real-time sync over WebSocket (issue 14; protocol:
-- spec/contracts/websocket.md). Serves /ws (the handshake: token and Origin, in the
-- host's `ws` facade; the per-address and per-user rate limits of web.ratelimit, as
-- REST), consumes `task-updates` and `reminders` as broadcast
-- subscriptions (every replica, every worker delivers to its own connections) and
-- keeps the per-user event log pruned to WS_RESUME_WINDOW_SECONDS.
-- Loading this file does no I/O.

local bus = require "bus"
local ws = require "ws"
local session = require "websocket.session"
local ratelimit = require "web.ratelimit"

return ws.define(bus.define {
  name = "websocket",
  websocket = {
    path = "/ws",
    protocol = "todo.v1",
    on_open = session.on_open,
    on_message = session.on_message,
    on_rate_limited = session.on_rate_limited,
    -- the handshake counts against the REST limits (per address, then per user)
    ratelimit = ratelimit,
  },
  subscriptions = {
    { topic = "task-updates", group = "websocket", broadcast = true, idempotent = true,
      handler = session.on_event, batch_handler = session.on_events },
    { topic = "reminders", group = "websocket", broadcast = true, idempotent = true,
      handler = session.on_event, batch_handler = session.on_events },
  },
  on_start = session.pruner,
})

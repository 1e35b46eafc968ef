--- The life of one connection (the manifest's websocket handlers) and the live fan-out
-- (the broadcast subscriptions' handler).
--
-- Ordering: every event message is sent with its log id as the sequence number of
-- `conn:send` / `ws.send_user`, so a connection gets each event at most once and in
-- order. From on_open until the client's first message (or HOLD_SECONDS), live events
-- are held (`conn:replay_begin`): a `resume` replays (after, newest] from the log and
-- then releases what was held above `newest`; any other message, or the timer, releases
-- them above hello's id.
-- @module websocket.session

local ws = require "ws"
local timer = require "timer"
local log = require "websocket.log"
local messages = require "websocket.messages"
local logger = require "log"

local M = {}

-- The newest log id sent live to each user's connections on this worker. The two
-- subscriptions (task-updates, reminders) are separate pumps, so a user's events can
-- reach deliver out of order (a reminder committed just after a task change may come
-- first), and a connection drops a seq at or below its last one: the older event would
-- be lost (scripts/chaos saw it). So an event above sent + 1 first sends the ids in
-- between from the log (all committed: ids follow commit order).
local sent = {}

--- Seconds live events wait after hello for a `resume` (or any message).
M.HOLD_SECONDS = tonumber(os.getenv("WS_HOLD_SECONDS") or "") or 1

local function release(conn, upto)
  if conn.held_open then
    conn.held_open = false
    conn:replay_end(upto)
  end
end

function M.on_open(conn)
  conn:replay_begin()
  conn.held_open = true
  local newest, err = log.position(conn.user)
  if not newest then
    logger.error("ws: cannot read the event log", { err = err })
    conn:close(1011, "event log unavailable")
    return
  end
  -- The client may have gone while the query waited (a storm's client that gave up on
  -- its handshake): a finished connection has no user any more, and nothing to greet.
  if not conn.open then return end
  conn.base = newest
  if not sent[conn.user] then sent[conn.user] = newest end
  conn.last_seq = newest
  conn:send { type = "hello", user = conn.user, event_id = newest, resume_window_seconds = log.WINDOW }
  timer.sleep(M.HOLD_SECONDS)
  if conn.open and not conn.resuming then release(conn, newest) end
end

-- Replay (after, newest] of the log, then release the held live events above newest.
local function resume(conn, after)
  if conn.resumed then
    return conn:send(messages.error("already_resumed", "resume is accepted once per connection"))
  end
  conn.resumed = true
  local late = not conn.held_open -- live events already flow: replay up to hello's id only
  conn.resuming = true
  local newest, pruned = log.position(conn.user)
  if not newest then
    conn:close(1011, "event log unavailable")
    return
  end
  local upto = late and conn.base or newest
  if after > newest or after < pruned then
    conn:send { type = "resync", event_id = newest,
                reason = after > newest and "unknown event id" or "outside the resume window" }
    release(conn, newest)
    return
  end
  local cursor = after
  while cursor < upto and conn.open do
    local rows, err = log.page(conn.user, cursor, upto)
    if not rows then
      logger.error("ws: replay failed", { err = err })
      conn:close(1011, "event log unavailable")
      return
    end
    if #rows == 0 then break end
    for _, r in ipairs(rows) do
      local msg = messages.event(r.type, r.data, r.event_id)
      if msg then conn:send(msg) end
      cursor = r.event_id
    end
  end
  conn:send { type = "resumed", event_id = upto }
  conn.resuming = false
  release(conn, upto)
end

function M.on_message(conn, text, binary)
  local msg, problem = messages.parse(text, binary)
  if not msg then return conn:send(problem) end
  if msg.type == "resume" then return resume(conn, msg.after) end
  if not conn.resuming then release(conn, conn.base or 0) end
  if msg.type == "ping" then return conn:send { type = "pong", id = msg.id } end
end

function M.on_rate_limited(conn)
  conn:send(messages.error("rate_limited", "too many messages; this one was dropped"))
end

-- Sends the user's log events in (sent[user], upto) that live delivery has not sent yet.
local function fill(user, upto)
  local from = sent[user]
  while from < upto - 1 do
    local rows, err = log.page(user, from, upto - 1)
    if not rows then return nil, err end
    if #rows == 0 then break end
    for _, r in ipairs(rows) do
      local msg = messages.event(r.type, r.data, r.event_id)
      if msg then ws.send_user(user, msg, r.event_id) end
      from = r.event_id
    end
  end
  return true
end

-- Live delivery of bus events to this worker's connections (every generation).
local function deliver(events, q)
  local ids = {}
  for i, e in ipairs(events) do ids[i] = e.id end
  local found, err = log.ids(q, ids)
  if not found then return nil, err end
  for _, e in ipairs(events) do
    local at = found[e.id]
    -- Not in the log: a type the log does not keep; nothing for clients.
    if at and ws.count(at.user) > 0 then
      local last = sent[at.user]
      if last and at.event_id > last + 1 then
        local ok, ferr = fill(at.user, at.event_id)
        if not ok then return nil, ferr end
      end
      local msg = messages.event(e.type, e.data, at.event_id)
      if msg then ws.send_user(at.user, msg, at.event_id) end
      if not last or at.event_id > last then sent[at.user] = at.event_id end
    elseif at then
      sent[at.user] = nil -- no connection here: the next one starts from its hello
    end
  end
  return true
end

--- Subscription handler (one event).
function M.on_event(event, tx) return deliver({ event }, tx) end

--- Subscription batch handler.
function M.on_events(events, tx) return deliver(events, tx) end

--- Background task: prune the log every WS_PRUNE_EVERY_SECONDS.
function M.pruner()
  local task = require "task"
  local every = tonumber(os.getenv("WS_PRUNE_EVERY_SECONDS") or "") or 3600
  while not task.stopping() do
    local n, err = log.prune()
    if not n then logger.warn("ws: pruning the event log failed", { err = err }) end
    task.wait(every)
  end
end

return M

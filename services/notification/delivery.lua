--- The delivery worker: sends queued deliveries (notification_deliveries) over their
-- channel, with retries. Each worker of each replica runs `run`. A delivery is claimed
-- with `FOR UPDATE SKIP LOCKED` and leased (attempts + 1, next attempt pushed past the
-- send's timeout) in a short transaction; the send happens outside any transaction; the
-- outcome and the attempt row are written in another. A crash mid-send leaves the lease to
-- expire and the attempt is made again (receivers deduplicate by delivery id). Each
-- attempt goes to the channel's current target (a changed webhook URL takes over the
-- pending retries).
-- Retries back off exponentially with jitter: attempt n waits between half and all of
-- NOTIFY_RETRY_BASE_SECONDS (default 5) * 2^(n-1), at most an hour; after
-- NOTIFY_MAX_ATTEMPTS (default 6) the delivery is `failed` with the reason. A refusal
-- that retrying cannot fix (a 4xx other than 408/425/429, an address refused) fails at
-- once. The channel's signing secret is opened (notification.secret_box) just before the
-- send; one that does not open is an attempt that fails with the reason, nothing sent.
-- @module notification.delivery

local pg = require "pg"
local task = require "task"
local log = require "log"
local json = require "json"
local clock = require "notification.clock"
local channels = require "notification.channels"
local wake = require "notification.wake"
local secret_box = require "notification.secret_box"

local M = {}

M.MAX_ATTEMPTS = math.tointeger(tonumber(os.getenv("NOTIFY_MAX_ATTEMPTS") or "")) or 6
M.RETRY_BASE = tonumber(os.getenv("NOTIFY_RETRY_BASE_SECONDS") or "") or 5
M.RETRY_MAX = 3600
M.BATCH = 20
M.IDLE = 30

M.waker = wake.new()
channels.on_queued = function() M.waker.poke() end

--- Seconds to wait after failed attempt `n` (1-based): exponential, equal jitter.
-- @tparam integer n
-- @treturn number
function M.backoff(n)
  local full = math.min(M.RETRY_MAX, M.RETRY_BASE * 2 ^ (n - 1))
  return full / 2 + math.random() * full / 2
end

local CLAIM = [[
  WITH picked AS (
    SELECT id FROM notification_deliveries
    WHERE state = 'pending' AND next_attempt_at <= $1::timestamptz
    ORDER BY next_attempt_at LIMIT $2
    FOR UPDATE SKIP LOCKED
  )
  UPDATE notification_deliveries d
     SET attempts = d.attempts + 1, next_attempt_at = $1::timestamptz + make_interval(secs => $3::float8),
         target = c.target
  FROM picked, notifications n, notification_channels c
  WHERE d.id = picked.id AND n.id = d.notification_id AND c.user_id = d.user_id AND c.channel = d.channel
  RETURNING d.id::text AS id, d.channel, d.target, d.attempts AS attempt, c.secret,
            c.secret_sealed, c.secret_key_id,
            n.id::text AS n_id, n.user_id, n.task_id::text AS task_id, n.title, n.due_at, n.remind_at,
            n.created_at, n.late, n.late_ms]]

local RECORD = [[
  WITH a AS (
    INSERT INTO notification_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error)
    VALUES ($1::uuid, $2::integer, $3::timestamptz, $4::integer, $5::integer, $6::text)
    ON CONFLICT DO NOTHING
  )
  UPDATE notification_deliveries SET state = $7::text, reason = $8::text,
         next_attempt_at = coalesce($9::timestamptz, next_attempt_at)
  WHERE id = $1::uuid AND attempts = $2::integer]]

-- Send one claimed delivery and record the outcome.
local function attempt(d)
  local channel = channels.registry[d.channel]
  local started = clock.now()
  local result
  local secret, why = secret_box.of_row(d.user_id, d)
  if not channel then
    result = { retry = false, error = "unknown channel " .. tostring(d.channel) }
  elseif not secret then
    -- a key problem is the operator's to fix: retried (backoff, attempt limit), never sent unsigned
    result = { retry = true, error = why }
  else
    d.secret = secret
    local notification = {
      id = d.n_id, kind = "reminder", task_id = d.task_id, title = d.title, due_at = d.due_at or json.null,
      remind_at = d.remind_at, created_at = d.created_at, late = d.late, late_ms = d.late_ms,
    }
    local ok, res = pcall(channel.send, d, notification)
    result = ok and res or { retry = true, error = "send failed: " .. tostring(res) }
  end
  local duration = math.floor((clock.now() - started) * 1000)
  local state, reason, next_at = "pending", nil, nil
  if result.ok then
    state = "delivered"
  elseif result.reason then
    state, reason = "failed", result.reason
  elseif not result.retry then
    state, reason = "failed", "the receiver refused it (" .. tostring(result.error) .. "); not retried"
  elseif d.attempt >= M.MAX_ATTEMPTS then
    state, reason = "failed", "gave up after " .. d.attempt .. " attempts; last: " .. tostring(result.error)
  else
    next_at = clock.iso(clock.now() + M.backoff(d.attempt))
    reason = "attempt " .. d.attempt .. " failed (" .. tostring(result.error) .. "); retrying"
  end
  local ok, err = pg.query(RECORD, d.id, d.attempt, clock.iso(started), duration, result.status or pg.null,
    result.error or pg.null, state, reason or pg.null, next_at or pg.null)
  if not ok then log.warn("notification: cannot record a delivery attempt", { error = tostring(err) }) end
  if state == "failed" then
    log.warn("notification: delivery failed", { delivery_id = d.id, channel = d.channel, reason = reason })
  end
  if next_at then M.waker.poke() end
end

-- Claim and send one batch (sends run concurrently). Returns the number claimed.
local function send_batch()
  local lease = 30
  for _, c in pairs(channels.registry) do lease = math.max(lease, (c.TIMEOUT or 0) + 30) end
  local rows, err = pg.query(CLAIM, clock.iso(), M.BATCH, lease)
  if not rows then return nil, err end
  local left = #rows
  if left == 0 then return 0 end
  local done = task.event()
  for _, d in ipairs(rows) do
    task.spawn(function()
      local ok, e = pcall(attempt, d)
      if not ok then log.error("notification: delivery attempt crashed", { error = tostring(e) }) end
      left = left - 1
      if left == 0 then done:set() end
    end)
  end
  done:wait()
  return #rows
end

-- One turn: send what is due, then sleep until the next attempt or a poke.
local function turn()
  local seen = M.waker.pokes()
  local n, err = send_batch()
  if not n then
    log.warn("notification: delivery claim failed", { error = tostring(err) })
    M.waker.sleep_until(clock.now() + 1)
  elseif n < M.BATCH then
    local rows = pg.query([[SELECT extract(epoch FROM min(next_attempt_at))::float8 AS at
      FROM notification_deliveries WHERE state = 'pending']])
    local at = rows and rows[1] and rows[1].at
    if at == pg.null then at = nil end
    local now = clock.now()
    local deadline = now + M.IDLE
    if at then deadline = math.min(deadline, math.max(at, now + 0.05)) end
    M.waker.sleep_until(deadline, seen)
  end
end

--- The delivery loop (a background task; returns when the bundle stops). A turn that
-- raises is logged and the loop goes on a second later.
function M.run()
  while not task.stopping() do
    local ok, err = pcall(turn)
    if not ok then
      log.error("notification: delivery turn failed", { error = tostring(err) })
      task.wait(1)
    end
  end
end

return M

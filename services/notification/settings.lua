--- The notification settings routes: the user's webhook and its delivery log.
--   GET /api/notification-settings                 {"webhook_url": url|null, ...}
--   PUT /api/notification-settings                 {"webhook_url": url|null[, "rotate_secret": true]}
--   GET /api/notification-settings/deliveries      ?limit=&cursor=  (newest first, with attempts)
-- The signing secret is made when a webhook is first set (or on `rotate_secret`) and is
-- answered only then (`webhook_secret`); it is never logged nor answered again, and is
-- stored sealed (notification.secret_box): without a usable key the PUT that would store
-- a new secret is refused (503 webhook_key_unavailable) and nothing is written.
-- Removing the webhook (null) fails its pending deliveries ("webhook removed").
-- @module notification.settings

local pg = require "pg"
local log = require "log"
local json = require "json"
local errors = require "web.errors"
local guard = require "web.guard"
local page = require "notification.page"
local clock = require "notification.clock"
local webhook_url = require "notification.webhook_url"
local webhook = require "notification.channels.webhook"
local handlers = require "notification.handlers"
local secret_box = require "notification.secret_box"

local M = {}

local function current(user)
  local rows, err, state = pg.query([[SELECT target, created_at, updated_at FROM notification_channels
    WHERE user_id = $1 AND channel = 'webhook']], user)
  if not rows then return nil, err, state end
  return rows[1] or false
end

local function present(row, secret)
  local out = {
    webhook_url = row and row.target or json.null,
    webhook_updated_at = row and row.updated_at or json.null,
    channels = json.array(row and { "webhook" } or {}),
  }
  if secret then out.webhook_secret = secret end
  return out
end

--- GET /api/notification-settings
function M.get(req)
  local row, err, state = current(req.user)
  if row == nil then return handlers.db_error(req, err, state) end
  return 200, present(row)
end

--- PUT /api/notification-settings
function M.put(req)
  local body, st, b, h = guard.json_body(req)
  if body == nil then return st, b, h end
  if type(body) ~= "table" or (#body > 0) then
    return errors.invalid(nil, "the body must be a JSON object {\"webhook_url\": ...}", "invalid_body")
  end
  for k in pairs(body) do
    if k ~= "webhook_url" and k ~= "rotate_secret" then
      return errors.invalid(k, "unknown field " .. errors.printable(k)
        .. "; writable fields: webhook_url, rotate_secret", "unknown_field")
    end
  end
  if body.webhook_url == nil then
    return errors.invalid("webhook_url", "webhook_url is required (a URL, or null)", "required")
  end
  if body.rotate_secret ~= nil and type(body.rotate_secret) ~= "boolean" then
    return errors.invalid("rotate_secret", "rotate_secret must be true or false")
  end
  local now = clock.iso()
  if body.webhook_url == json.null then
    if body.rotate_secret then
      return errors.invalid("rotate_secret", "there is no webhook secret to rotate when removing the webhook")
    end
    local ok, err, state = pg.tx(function(tx)
      local r, e, s = tx:query("DELETE FROM notification_channels WHERE user_id = $1 AND channel = 'webhook'", req.user)
      if not r then return nil, e, s end
      r, e, s = tx:query([[UPDATE notification_deliveries SET state = 'failed', reason = 'webhook removed'
        WHERE user_id = $1 AND channel = 'webhook' AND state = 'pending']], req.user)
      if not r then return nil, e, s end
      return true
    end)
    if not ok then return handlers.db_error(req, err, state) end
    return 200, present(false)
  end
  local url, why = webhook_url.check(body.webhook_url)
  if not url then return errors.invalid("webhook_url", why) end
  local secret = webhook.new_secret()
  local sealed, key_id = secret_box.seal(req.user, secret)
  if not sealed then
    log.error("notification: cannot seal a webhook secret", { error = key_id })
    return errors.response(503, "webhook_key_unavailable",
      "webhook secrets cannot be stored right now: the server's webhook signing key is not configured; "
      .. "nothing was changed")
  end
  -- A new row gets the new secret; an existing one keeps its secret unless rotated.
  local rows, err, state = pg.query([[
    INSERT INTO notification_channels (user_id, channel, target, secret, secret_sealed, secret_key_id,
                                       created_at, updated_at)
    VALUES ($1, 'webhook', $2, NULL, $3, $6, $4::timestamptz, $4::timestamptz)
    ON CONFLICT (user_id, channel) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at,
      secret = CASE WHEN $5::boolean THEN NULL ELSE notification_channels.secret END,
      secret_sealed = CASE WHEN $5::boolean THEN excluded.secret_sealed ELSE notification_channels.secret_sealed END,
      secret_key_id = CASE WHEN $5::boolean THEN excluded.secret_key_id ELSE notification_channels.secret_key_id END
    RETURNING target, created_at, updated_at, (xmax = 0) AS created]],
    req.user, url, sealed, now, body.rotate_secret == true, key_id)
  if not rows then return handlers.db_error(req, err, state) end
  local row = rows[1]
  local shown = (row.created or body.rotate_secret == true) and secret or nil
  return row.created and 201 or 200, present(row, shown)
end

local function present_delivery(r)
  local attempts = {}
  if type(r.attempt_log) == "table" then
    for i, a in ipairs(r.attempt_log) do attempts[i] = a end
  end
  return {
    id = r.id, notification_id = r.notification_id, channel = r.channel, target = r.target, state = r.state,
    attempts = r.attempts, reason = r.reason or json.null, created_at = r.created_at,
    next_attempt_at = r.state == "pending" and r.next_attempt_at or json.null,
    attempt_log = json.array(attempts),
  }
end

--- GET /api/notification-settings/deliveries
function M.deliveries(req)
  local o, field, msg = page.options(req, "deliveries", {})
  if not o then return errors.invalid(field, msg, field == "cursor" and "invalid_cursor" or "invalid_query") end
  local sql = [[SELECT d.id::text AS id, d.notification_id::text AS notification_id, d.channel, d.target, d.state,
      d.attempts, d.reason, d.created_at, d.next_attempt_at,
      (SELECT coalesce(json_agg(json_build_object('attempt', a.attempt, 'started_at', a.started_at,
          'duration_ms', a.duration_ms, 'status', a.status, 'error', a.error) ORDER BY a.attempt), '[]'::json)
       FROM notification_delivery_attempts a WHERE a.delivery_id = d.id) AS attempt_log
    FROM notification_deliveries d WHERE d.user_id = $1]]
  local args = { req.user }
  if o.after then
    sql = sql .. " AND (d.created_at, d.id) < ($2::timestamptz, $3::uuid)"
    args[2], args[3] = o.after.t, o.after.i
  end
  args[#args + 1] = o.limit + 1
  sql = sql .. " ORDER BY d.created_at DESC, d.id DESC LIMIT $" .. #args
  local rows, err, state = pg.query(sql, table.unpack(args))
  if not rows then return handlers.db_error(req, err, state) end
  local items, next_cursor = page.finish(req.user, "deliveries", rows, o.limit, present_delivery)
  return 200, { items = items, next_cursor = next_cursor }
end

return M

--- Delivery channels: the one place where a way of telling the user plugs in. A channel
-- module (channels/<name>.lua) has
--   `name`                         its name, stored in notification_channels.channel
--   `send(delivery, notification)` one attempt; returns `{ok = true, status = n}` or
--                                  `{retry = boolean, status = n|nil, error = "why"}`
--                                  (`reason`: fails the delivery at once with it)
-- and users opt in with a row in notification_channels (user, channel, target, secret).
-- When reminders fire, `enqueue` queues one delivery per notification and opted-in
-- channel in the firing transaction; notification.delivery sends them with retries.
-- Email or push would be one more module here and a settings route.
-- @module notification.channels

local pg = require "pg"

local M = {}

--- The channels by name.
M.registry = {
  webhook = require "notification.channels.webhook",
}

local names = {}
for name in pairs(M.registry) do names[#names + 1] = name end
table.sort(names)

--- Called after reminders fired (set by notification.delivery to wake its worker).
M.on_queued = nil

--- Queue deliveries of new notifications to every channel their users opted into.
-- @param tx the firing transaction
-- @tparam table notifications array of `{id =, user_id =, created_at =}`
-- @return the number queued, or nil and a message
function M.enqueue(tx, notifications)
  if #notifications == 0 then return 0 end
  local ids, users = {}, {}
  for i, n in ipairs(notifications) do ids[i], users[i] = n.id, n.user_id end
  local rows, err = tx:query([[
    WITH queued AS (
      INSERT INTO notification_deliveries (notification_id, user_id, channel, target, next_attempt_at, created_at)
      SELECT n.id, n.user_id, c.channel, c.target, $3::timestamptz, $3::timestamptz
      FROM unnest($1::uuid[], $2::text[]) AS n(id, user_id)
      JOIN notification_channels c ON c.user_id = n.user_id AND c.channel = ANY($4::text[])
      RETURNING 1
    ) SELECT count(*)::integer AS n FROM queued]],
    pg.array(ids), pg.array(users), notifications[1].created_at, pg.array(names))
  if not rows then return nil, err end
  M.queued = (rows[1].n or 0) > 0
  return rows[1].n
end

--- Wake the delivery worker when the last `enqueue` queued something.
function M.poke()
  if M.queued and M.on_queued then M.on_queued() end
  M.queued = false
end

return M

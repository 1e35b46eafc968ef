--- The notifications routes: the list (newest first, keyset pages, `unread=true`), the
-- unread count, marking one or all read. Every statement is scoped to `req.user`; another
-- user's notification is a 404, never a hint that it exists.
--   GET  /api/notifications              ?unread=true&limit=&cursor=
--   GET  /api/notifications/unread-count
--   POST /api/notifications/:id/read
--   POST /api/notifications/read-all
-- @module notification.handlers

local pg = require "pg"
local json = require "json"
local errors = require "web.errors"
local page = require "notification.page"
local clock = require "notification.clock"

local M = {}

local COLUMNS = [[id::text AS id, kind, task_id::text AS task_id, title, due_at, remind_at, created_at,
  late, late_ms, read_at]]

local function is_uuid(s)
  return type(s) == "string" and #s == 36 and s:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil
end
M.is_uuid = is_uuid

--- The JSON shape of a notification.
function M.present(r)
  return {
    id = r.id, kind = r.kind, task_id = r.task_id or json.null, title = r.title, due_at = r.due_at or json.null,
    remind_at = r.remind_at, created_at = r.created_at, late = r.late, late_seconds = (r.late_ms or 0) / 1000,
    read = r.read_at ~= nil and r.read_at ~= json.null, read_at = r.read_at or json.null,
  }
end

local function db_error(req, err, state)
  local s = tostring(state or "")
  if err == "pool timeout" or s:sub(1, 2) == "08" or s == "57P01" or s == "57P03" then
    return errors.unavailable(req, tostring(err) .. " (" .. s .. ")")
  end
  return errors.internal(req, tostring(err) .. " (" .. s .. ")")
end
M.db_error = db_error

--- GET /api/notifications
function M.list(req)
  local o, field, msg = page.options(req, "notifications", { unread = true })
  if not o then return errors.invalid(field, msg, field == "cursor" and "invalid_cursor" or "invalid_query") end
  local sql = "SELECT " .. COLUMNS .. " FROM notifications WHERE user_id = $1"
  local args = { req.user }
  if o.flags.unread == true then sql = sql .. " AND read_at IS NULL"
  elseif o.flags.unread == false then sql = sql .. " AND read_at IS NOT NULL" end
  if o.after then
    sql = sql .. " AND (created_at, id) < ($2::timestamptz, $3::uuid)"
    args[2], args[3] = o.after.t, o.after.i
  end
  args[#args + 1] = o.limit + 1
  sql = sql .. " ORDER BY created_at DESC, id DESC LIMIT $" .. #args
  local rows, err, state = pg.query(sql, table.unpack(args))
  if not rows then return db_error(req, err, state) end
  local items, next_cursor = page.finish(req.user, "notifications", rows, o.limit, M.present)
  return 200, { items = items, next_cursor = next_cursor }
end

--- GET /api/notifications/unread-count
function M.unread_count(req)
  if next(req.query or {}) then
    return errors.invalid(next(req.query), "this route takes no query parameters", "invalid_query")
  end
  local rows, err, state = pg.query(
    "SELECT count(*)::integer AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL", req.user)
  if not rows then return db_error(req, err, state) end
  return 200, { unread = rows[1].n }
end

--- POST /api/notifications/:id/read (idempotent: reading it again keeps the first read_at)
function M.read(req)
  local id = req.params.id
  if not is_uuid(id) then return errors.not_found("notification") end
  local rows, err, state = pg.query("UPDATE notifications SET read_at = coalesce(read_at, $3::timestamptz)"
    .. " WHERE id = $1::uuid AND user_id = $2 RETURNING " .. COLUMNS, id, req.user, clock.iso())
  if not rows then return db_error(req, err, state) end
  if not rows[1] then return errors.not_found("notification") end
  return 200, M.present(rows[1])
end

--- POST /api/notifications/read-all
function M.read_all(req)
  local rows, err, state = pg.query([[WITH r AS (UPDATE notifications SET read_at = $2::timestamptz
    WHERE user_id = $1 AND read_at IS NULL RETURNING 1) SELECT count(*)::integer AS n FROM r]],
    req.user, clock.iso())
  if not rows then return db_error(req, err, state) end
  return 200, { marked_read = rows[1].n, unread = 0 }
end

return M

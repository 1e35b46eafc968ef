--- Opaque, signed keyset cursors for task lists. A cursor holds the sort, the order,
-- the sort-key value of the last task of a page (as PostgreSQL text, so it round-trips
-- exactly) and that task's id: the next page starts strictly after that position, so
-- tasks added meanwhile never make a page skip or repeat one.
-- Format: base64url(JSON) "." base64url(HMAC-SHA256(secret, JSON)[1..16]).
-- @module tasks.cursor

local json = require "json"
local crypto = require "crypto"

local M = {}

local function secret()
  local env = os.getenv
  return (env and (env("API_CURSOR_SECRET") or env("AUTH_DEV_SECRET"))) or "todo-api-cursor"
end

local function sign(user, payload)
  return crypto.base64url_encode(crypto.hmac_sha256(secret(), user .. "\n" .. payload):sub(1, 16))
end

--- Encode the position after `key`/`id` for a list sorted by `sort`/`order`.
-- @tparam string user the owner (a cursor is valid only for that user)
-- @tparam string sort
-- @tparam string order
-- @param key the sort key as text, or nil when the task has none (no due date)
-- @tparam string id the task id
-- @treturn string the cursor
function M.encode(user, sort, order, key, id)
  local payload = json.encode({ s = sort, o = order, k = key == nil and json.null or key, i = id })
  return crypto.base64url_encode(payload) .. "." .. sign(user, payload)
end

--- Decode a cursor made by `encode` for the same user, sort and order.
-- @return a table `{key = string|nil, id = string}`, or nil and a message
function M.decode(user, sort, order, cursor)
  if type(cursor) ~= "string" or #cursor > 2048 then return nil, "cursor is not valid" end
  local body, mac = cursor:match("^([%w_%-]+)%.([%w_%-]+)$")
  if not body then return nil, "cursor is not valid; pass next_cursor back unchanged" end
  local payload = crypto.base64url_decode(body)
  if not payload or sign(user, payload) ~= mac then
    return nil, "cursor is not valid; pass next_cursor back unchanged"
  end
  local t = json.decode(payload)
  if type(t) ~= "table" or type(t.i) ~= "string" then return nil, "cursor is not valid" end
  if t.s ~= sort or t.o ~= order then
    return nil, "cursor was made for another sort or order; keep sort and order while paging"
  end
  local key = t.k
  if key == json.null then key = nil end
  if key ~= nil and type(key) ~= "string" then return nil, "cursor is not valid" end
  return { key = key, id = t.i }
end

return M

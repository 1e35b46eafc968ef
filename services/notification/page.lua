--- Keyset pages of the notification lists (newest first): the query parameters
-- (`limit`, `cursor`, and whichever flags a route allows) and opaque signed cursors
-- holding the (created_at, id) of the last item of a page, so that items added meanwhile
-- never make a page skip or repeat one. Format as the task list's: base64url(JSON) "."
-- base64url(HMAC-SHA256(secret, user + JSON)[1..16]); a cursor is valid only for its user
-- and its list.
-- @module notification.page

local json = require "json"
local crypto = require "crypto"
local query = require "web.query"
local printable = require("web.errors").printable

local M = {}

local function secret()
  return os.getenv("API_CURSOR_SECRET") or os.getenv("AUTH_DEV_SECRET") or "todo-api-cursor"
end

local function sign(user, payload)
  return crypto.base64url_encode(crypto.hmac_sha256(secret(), user .. "\n" .. payload):sub(1, 16))
end

--- Cursor after the item (`created_at` as the database returned it, `id`).
function M.encode(user, list, created_at, id)
  local payload = json.encode({ l = list, t = created_at, i = id })
  return crypto.base64url_encode(payload) .. "." .. sign(user, payload)
end

--- Decode a cursor of `list` for `user`: `{t = created_at, i = id}` or nil, message.
function M.decode(user, list, cursor)
  local body, mac = cursor:match("^([%w_%-]+)%.([%w_%-]+)$")
  local payload = body and crypto.base64url_decode(body)
  if not payload or sign(user, payload) ~= mac then
    return nil, "cursor is not valid; pass next_cursor back unchanged"
  end
  local t = json.decode(payload)
  if type(t) ~= "table" or t.l ~= list or type(t.t) ~= "string" or type(t.i) ~= "string" then
    return nil, "cursor is not valid for this list"
  end
  return t
end

--- Parse the query of a list route.
-- @tparam table req
-- @tparam string list the list's name (a cursor of another list is refused)
-- @tparam table flags extra boolean parameters allowed, e.g. `{unread = true}`
-- @return `{limit =, after = {t, i} | nil, flags = {name = boolean}}`, or nil, field, message
function M.options(req, list, flags)
  local allowed = { "limit", "cursor" }
  for name in pairs(flags or {}) do allowed[#allowed + 1] = name end
  table.sort(allowed)
  local o = { limit = 50, flags = {} }
  for _, name in ipairs(query.names(req)) do
    local v = query.one(req, name)
    if name == "limit" then
      local n = type(v) == "string" and #v <= 4 and v:match("^%d+$") and tonumber(v)
      if not n or n < 1 or n > 200 then return nil, "limit", "limit must be a whole number from 1 to 200" end
      o.limit = math.tointeger(n)
    elseif name == "cursor" then
      if type(v) ~= "string" or #v > 1024 then return nil, "cursor", "cursor is not valid" end
      local after, why = M.decode(req.user, list, v)
      if not after then return nil, "cursor", why end
      o.after = after
    elseif flags and flags[name] then
      if v ~= "true" and v ~= "false" then return nil, name, name .. " must be true or false" end
      o.flags[name] = v == "true"
    else
      return nil, name, "unknown query parameter " .. printable(name) .. "; allowed: "
        .. table.concat(allowed, ", ")
    end
  end
  return o
end

--- The page of `rows` (fetched with limit + 1) and its next cursor.
-- @return items (a JSON array), next_cursor (string or json.null)
function M.finish(user, list, rows, limit, convert)
  local items = {}
  for i = 1, math.min(#rows, limit) do items[i] = convert(rows[i]) end
  local next_cursor = json.null
  if #rows > limit then
    local last = rows[limit]
    next_cursor = M.encode(user, list, last.created_at, last.id)
  end
  return json.array(items), next_cursor
end

return M

--- WebSocket endpoints (module "ws"): the handshake route of a manifest's `websocket`
-- table and the calls a bundle makes on connections. C side: core/src/ws/ (libwebsockets
-- on the worker's libuv loop; framing, masking, fragments, UTF-8 checks, close codes and
-- ping/pong are libwebsockets' work).
--
-- A manifest declares its endpoint and is wrapped in `ws.define` (which adds the
-- handshake route; it composes with `bus.define`):
--
--     return ws.define {
--       name = "...",
--       websocket = {
--       path = "/ws",                -- GET path of the handshake, on the HTTP port
--       protocol = "todo.v1",        -- sub-protocol answered when the client offers it
--       on_open = function(conn) end,
--       on_message = function(conn, text, is_binary) end,
--       on_close = function(conn, code) end,
--       on_rate_limited = function(conn) end,   -- optional: a message was dropped
--       ratelimit = require "web.ratelimit",     -- optional: limits of the handshake
--       },
--     }
--
-- Each handler runs in its own coroutine, like a request (pg, http, the bus may be used).
-- A connection `conn` has `conn.user` (the token's `sub`), `conn.id`, `conn.open`,
-- `conn:send(text_or_table[, seq])`, `conn:close([code[, reason]])`,
-- `conn:replay_begin()`, `conn:replay_end(last)`, `conn.last_seq`, and any field the
-- bundle sets on it. A send with a sequence number `seq` is delivered at most once and in
-- order per connection (skipped when `seq <= conn.last_seq`; held between
-- `replay_begin` and `replay_end`, then sent if still newer). Sends are queued and
-- written when the socket is writable; a queue over WS_SEND_QUEUE_BYTES closes the
-- connection with 1008.
--
-- The handshake (GET `path`, answered before any upgrade): with a `ratelimit` (an
-- object with `check_address(address)` and `check(user)`, lua/web/ratelimit.lua's
-- interface, answering nil or a refusal), every handshake counts against the client
-- address's budget first (RATE_LIMIT_PER_ADDRESS_PER_SECOND, before any other check: a
-- flood of upgrades costs no token verification) and, once its token is verified,
-- against the user's (RATE_LIMIT_PER_SECOND): over either, 429 with `Retry-After` and
-- no upgrade; open connections are not counted. `Origin` must be in
-- WS_ALLOWED_ORIGINS (comma-separated; empty allows all) or 403; the bearer token comes
-- from the sub-protocol `bearer.<token>` or the query parameter `access_token` and is
-- verified by the `auth` module, or 401; over WS_MAX_CONNECTIONS per worker, 503.
-- @module ws

local core = require "ws.core"

local M = {}

M.core = core

--- Send to every connection of `user` in this worker (every generation).
-- @tparam string user
-- @param message a string (sent as is) or a table (sent as JSON)
-- @tparam[opt] integer seq sequence number (see the module description)
-- @treturn integer the number of connections it was queued on
function M.send_user(user, message, seq) return core.send_user(user, message, seq) end

--- Open connections of this worker, or of one user in it.
-- @tparam[opt] string user
-- @treturn integer
function M.count(user) return core.count(user) end

--- The limits in force (WS_* settings): send_queue_bytes, max_message_bytes,
-- rate_per_second, rate_burst, ping_seconds, idle_timeout_seconds, max_connections.
-- @treturn table
function M.limits() return core.limits() end

local function log(level, msg, fields)
  local ok, l = pcall(require, "log")
  if ok and type(l) == "table" and l[level] then l[level](msg, fields) end
end

local allowed_origins -- set (origin -> true), or false: every origin

local function origins()
  if allowed_origins == nil then
    allowed_origins = false
    local list = os.getenv("WS_ALLOWED_ORIGINS") or ""
    for o in list:gmatch("[^,%s]+") do
      allowed_origins = allowed_origins or {}
      allowed_origins[o] = true
    end
  end
  return allowed_origins
end

local function refuse(status, code, message, headers)
  return status, { error = { code = code, message = message } }, headers
end

local function has_token(value, word)
  for t in (value or ""):gmatch("[^,%s]+") do
    if t:lower() == word then return true end
  end
  return false
end

--- The handshake of endpoint `ep` for request `req` (the route `install` adds).
-- @tparam table ep the manifest's websocket table
-- @tparam table req the request
-- @return status, body, headers (refusals); after an upgrade the answer is dropped
function M.handshake(ep, req)
  local limiter = ep.ratelimit
  if limiter then
    local limited, body, headers = limiter.check_address(req.client_address)
    if limited then return limited, body, headers end
  end
  local h = req.headers
  if not has_token(h.upgrade, "websocket") or not has_token(h.connection, "upgrade") then
    return refuse(426, "upgrade_required", "this path speaks WebSocket: send an Upgrade: websocket request",
      { Upgrade = "websocket" })
  end
  if h["sec-websocket-version"] ~= "13" then
    -- RFC 6455 4.4: refuse, naming the version this server speaks
    return refuse(426, "upgrade_required", "this server speaks WebSocket version 13 (Sec-WebSocket-Version)",
      { Upgrade = "websocket", ["Sec-WebSocket-Version"] = "13" })
  end
  local allow = origins()
  if allow and h.origin and not allow[h.origin] then
    return refuse(403, "forbidden_origin", "this Origin is not allowed (WS_ALLOWED_ORIGINS)")
  end
  local token, offered, any = nil, false, false
  for p in (h["sec-websocket-protocol"] or ""):gmatch("[^,%s]+") do
    any = true
    if p:sub(1, 7) == "bearer." then
      token = p:sub(8)
    elseif p == ep.protocol then
      offered = true
    end
  end
  if any and not offered and ep.protocol then
    return refuse(400, "bad_upgrade", "offer the sub-protocol " .. ep.protocol .. " beside bearer.<token>")
  end
  token = token or (req.query and req.query.access_token)
  if not token or token == "" then
    return refuse(401, "unauthorized", "a bearer token is required (sub-protocol bearer.<token> or access_token)")
  end
  local claims, err = require("auth").verify(token)
  if not claims then return refuse(401, "unauthorized", err or "invalid token") end
  local sub = claims.sub
  if type(sub) ~= "string" or sub == "" or #sub > 255 then
    return refuse(401, "unauthorized", "the token has no usable subject")
  end
  if limiter then
    local limited, body, headers = limiter.check(sub)
    if limited then return limited, body, headers end
  end
  local ok, why, status = core.accept(ep, sub, offered and ep.protocol or nil)
  if not ok then
    local code = status == 503 and "too_many_connections" or status == 400 and "bad_upgrade" or "internal_error"
    return refuse(status or 500, code, why)
  end
  return 101
end

--- Wrap a manifest that has a `websocket` table (like `bus.define`): checks it and adds
-- its handshake route (GET `path`) to `manifest.routes`. Raises on a bad table. Does no
-- I/O (it runs at load time).
-- @tparam table manifest
-- @treturn table the same manifest
function M.define(manifest)
  local ep = manifest.websocket
  if type(ep) ~= "table" then
    error("ws.define: 'websocket' must be a table {path=, on_open=, on_message=, on_close=}", 2)
  end
  if type(ep.path) ~= "string" or ep.path:sub(1, 1) ~= "/" then
    error("websocket.path must be a string starting with '/'", 0)
  end
  if ep.protocol ~= nil and (type(ep.protocol) ~= "string" or not ep.protocol:match("^[%w%.%-_]+$")) then
    error("websocket.protocol must be a token (letters, digits, . - _)", 0)
  end
  for _, name in ipairs { "on_open", "on_message", "on_close", "on_rate_limited" } do
    if ep[name] ~= nil and type(ep[name]) ~= "function" then error("websocket." .. name .. " must be a function", 0) end
  end
  local rl = ep.ratelimit
  if rl ~= nil and (type(rl) ~= "table" or type(rl.check_address) ~= "function" or type(rl.check) ~= "function") then
    error("websocket.ratelimit must have check_address(address) and check(user) (web.ratelimit)", 0)
  end
  manifest.routes = manifest.routes or {}
  local function handshake(req) return M.handshake(ep, req) end
  table.insert(manifest.routes, { method = "GET", path = ep.path, handler = handshake })
  if not origins() then
    log("warn", "ws: WS_ALLOWED_ORIGINS is empty: every Origin may open " .. ep.path, {})
  end
  return manifest
end

return M

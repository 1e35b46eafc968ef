--- WebSocket clients for the specs: each one is spec/support/ws_client.py (Debian's
-- python3-websockets) running in the background, recording what it saw as JSON lines
-- that the spec reads back.
local h = require "spec.helpers"
local json = require "json"

local M = {}

local PY = "/usr/bin/python3" -- Debian's, where python3-websockets is installed

local Client = {}
Client.__index = Client

--- Start a client. opts: port, path ("/ws"), token, query_token, protocols (list),
-- origin, send (list of strings), send_size, seconds, stall, gap, stop_on.
function M.open(opts)
  local self = setmetatable({}, Client)
  self.dir = h.sh("mktemp -d /tmp/todo-spec-ws.XXXXXX")
  self.out = self.dir .. "/out.jsonl"
  local url = "ws://127.0.0.1:" .. opts.port .. (opts.path or "/ws")
  if opts.query_token then url = url .. "?access_token=" .. opts.query_token end
  local parts = { PY, "spec/support/ws_client.py", "--url", h.sh_quote(url), "--out", h.sh_quote(self.out),
    "--seconds", tostring(opts.seconds or 8), "--gap", tostring(opts.gap or 0.05) }
  if opts.token then parts[#parts + 1] = "--token " .. h.sh_quote(opts.token) end
  for _, p in ipairs(opts.protocols or { "todo.v1" }) do parts[#parts + 1] = "--protocol " .. h.sh_quote(p) end
  if opts.origin then parts[#parts + 1] = "--origin " .. h.sh_quote(opts.origin) end
  for _, s in ipairs(opts.send or {}) do
    parts[#parts + 1] = "--send " .. h.sh_quote(type(s) == "table" and json.encode(s) or s)
  end
  if opts.send_size then parts[#parts + 1] = "--send-size " .. opts.send_size end
  if opts.stall then parts[#parts + 1] = "--stall" end
  if opts.stop_on then parts[#parts + 1] = "--until " .. h.sh_quote(opts.stop_on) end
  local cmd = table.concat(parts, " ")
  os.execute("sh -c " .. h.sh_quote(cmd .. " 2>" .. self.dir .. "/err & echo $! >" .. self.dir .. "/pid")
    .. " >/dev/null 2>&1")
  return self
end

--- Every record so far.
function Client:records()
  local f = io.open(self.out)
  if not f then return {} end
  local out = {}
  for line in f:lines() do out[#out + 1] = json.decode(line) end
  f:close()
  return out
end

--- The messages received so far (decoded JSON objects, or strings).
function Client:messages()
  local out = {}
  for _, r in ipairs(self:records()) do
    if r.msg ~= nil then out[#out + 1] = r.msg end
  end
  return out
end

--- The record with a field `name`, or nil.
function Client:record(name)
  for _, r in ipairs(self:records()) do
    if r[name] ~= nil then return r end
  end
end

--- Wait until pred(messages) is true; returns the messages (or nil on timeout).
function Client:wait(pred, timeout)
  local got
  local ok = h.eventually(function()
    got = self:messages()
    return pred(got)
  end, timeout or 10)
  return ok and got or nil, got
end

--- Wait until `n` messages have arrived.
function Client:wait_count(n, timeout)
  return self:wait(function(m) return #m >= n end, timeout)
end

--- Wait for a record named `name` (closed, refused, subprotocol).
function Client:wait_record(name, timeout)
  local rec
  h.eventually(function()
    rec = self:record(name)
    return rec ~= nil
  end, timeout or 10)
  return rec
end

--- Messages of a given type.
function M.of_type(messages, prefix)
  local out = {}
  for _, m in ipairs(messages) do
    if type(m) == "table" and type(m.type) == "string" and m.type:sub(1, #prefix) == prefix then out[#out + 1] = m end
  end
  return out
end

--- Stop the client process (if it still runs).
function Client:kill()
  local f = io.open(self.dir .. "/pid")
  if f then
    local pid = tonumber(f:read("a"))
    f:close()
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  end
end

--- What the client wrote to stderr.
function Client:stderr()
  local f = io.open(self.dir .. "/err")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

return M

-- The WebSocket handshake (GET /ws, services/websocket) behind the REST rate limits
-- (web.ratelimit through ws.define's `ratelimit`; issue 19): every upgrade request
-- counts against its client address's budget before anything else is checked, and
-- against its user's once the token is verified; over either it is answered 429 with
-- Retry-After and never upgraded. Other addresses (here: forwarded by a trusted proxy)
-- keep their own budget, and connections already open are not touched.
-- Clients come from different loopback addresses (all of 127/8 is this machine).
local h = require "spec.helpers"
local json = require "json"

local uid = h.uid
local next_second = h.next_second

local function upgrade(port, token, extra)
  local key = "dGhlIHNhbXBsZSBub25jZQ=="
  return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" .. port .. "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" ..
    "Sec-WebSocket-Key: " .. key .. "\r\nSec-WebSocket-Version: 13\r\n" ..
    "Sec-WebSocket-Protocol: todo.v1, bearer." .. token .. "\r\n" .. (extra or "") .. "\r\n"
end

local send_from = h.send_from

local tally = h.tally

-- One masked text frame from the client (a zero mask key: legal, and the payload
-- stays readable).
local function frame(text)
  assert(#text < 126)
  return string.char(0x81, 0x80 + #text, 0, 0, 0, 0) .. text
end

-- Read server frames until a text frame for which `want(decoded JSON)` is true.
local function wait_text(c, want)
  c:settimeout(5)
  for _ = 1, 50 do
    local head, err = c:receive(2)
    if not head then return nil, err end
    local op, len = head:byte(1) & 0x0f, head:byte(2) & 0x7f
    if len == 126 then
      local ext = assert(c:receive(2))
      len = ext:byte(1) * 256 + ext:byte(2)
    elseif len == 127 then
      local ext = assert(c:receive(8))
      len = 0
      for i = 1, 8 do len = len * 256 + ext:byte(i) end
    end
    local payload = len > 0 and assert(c:receive(len)) or ""
    if op == 8 then return nil, "closed " .. payload end
    local ok, msg = pcall(json.decode, payload)
    if op == 1 and ok and type(msg) == "table" and want(msg) then return payload end
  end
  return nil, "no such message"
end

local function close_all(responses)
  for _, r in ipairs(responses) do if r.conn then r.conn:close() end end
end

describe("the WebSocket handshake's rate limits", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "services/api", "services/websocket" },
      env = { RATE_LIMIT_PER_ADDRESS_PER_SECOND = "5", RATE_LIMIT_PER_SECOND = "8",
              TRUSTED_PROXIES = "127.0.0.9", WS_HOLD_SECONDS = "0" } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  it("answers a flood of upgrades from one address 429 with Retry-After past its budget; "
    .. "another address and the open connections are not affected", function()
    local token = h.token(uid("flood"))
    next_second()
    local flood = send_from(host.port, "127.0.0.2", (function()
      local raws = {}
      for i = 1, 12 do raws[i] = upgrade(host.port, token) end
      return raws
    end)())
    -- a client behind the trusted proxy, in the same second
    local other = send_from(host.port, "127.0.0.9", {
      upgrade(host.port, h.token(uid("other")), "X-Forwarded-For: 203.0.113.7\r\n"),
      upgrade(host.port, h.token(uid("other")), "X-Forwarded-For: 203.0.113.7\r\n"),
    })
    finally(function() close_all(flood) close_all(other) end)
    assert.are.same({ [101] = 5, [429] = 7 }, tally(flood))
    assert.are.same({ [101] = 2 }, tally(other))
    for _, r in ipairs(flood) do
      if r.status == 429 then
        assert.are.equal("1", r.headers["retry-after"])
        assert.is_nil(r.headers.upgrade)
        local body = json.decode(r.body)
        assert.are.equal("rate_limited", body.error.code, r.body)
        assert.matches("5 per second per client address", body.error.message)
      end
    end
    -- the five upgraded still work while their address is over its budget
    for i, r in ipairs(flood) do
      if r.conn then
        r.conn:send(frame('{"type":"ping","id":' .. i .. '}'))
        local pong, err = wait_text(r.conn, function(m) return m.type == "pong" and m.id == i end)
        assert.is_truthy(pong, "an open connection stopped answering: " .. tostring(err))
      end
    end
  end)

  it("counts a user's upgrades against its budget, whatever the address", function()
    local token = h.token(uid("many"))
    next_second()
    -- ten upgrades of one user from ten addresses behind the proxy: each address is
    -- within its 5, the user is over its 8
    local raws = {}
    for i = 1, 10 do raws[i] = upgrade(host.port, token, "X-Forwarded-For: 198.51.100." .. i .. "\r\n") end
    local got = send_from(host.port, "127.0.0.9", raws)
    finally(function() close_all(got) end)
    assert.are.same({ [101] = 8, [429] = 2 }, tally(got))
    for _, r in ipairs(got) do
      if r.status == 429 then
        assert.are.equal("1", r.headers["retry-after"])
        assert.matches("8 per second per user", json.decode(r.body).error.message)
      end
    end
  end)
end)

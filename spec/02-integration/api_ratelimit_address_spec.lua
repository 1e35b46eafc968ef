-- The per-client-address rate limit of the guarded routes (web.ratelimit through
-- web.guard; the address from the host's http/client_addr.c), on one machine: counters
-- in PostgreSQL (lua/state) shared by the host's two workers. Clients come from
-- different loopback addresses (127.0.0.2, .3, ...: all of 127/8 is this machine).
-- RATE_LIMIT_PER_ADDRESS_PER_SECOND=5: the sixth request of an address within one
-- second is 429, whatever its token (none, forged or valid); other addresses are not
-- affected; X-Forwarded-For counts only from a peer in TRUSTED_PROXIES.
local h = require "spec.helpers"
local json = require "json"

local uid = h.uid

local next_second = h.next_second

local send_from = h.send_from

local function get(path, token, extra)
  return "GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" ..
    (token and ("Authorization: Bearer " .. token .. "\r\n") or "") .. (extra or "") .. "\r\n"
end

local tally = h.tally

local function burst(port, from, n, make)
  local raws = {}
  for i = 1, n do raws[i] = make(i) end
  return send_from(port, from, raws)
end

describe("per-address rate limit", function()
  local host, proxied

  lazy_setup(function()
    host = h.start { bundles = { "services/api" }, workers = 2,
      env = { RATE_LIMIT_PER_ADDRESS_PER_SECOND = "5" } }
    proxied = h.start { bundles = { "services/api" }, workers = 2,
      env = { RATE_LIMIT_PER_ADDRESS_PER_SECOND = "5", TRUSTED_PROXIES = "127.0.0.9, 127.0.1.0/24" } }
  end)
  lazy_teardown(function()
    if host then host:stop() end
    if proxied then proxied:stop() end
  end)

  it("refuses the sixth request of an address in a second, forged tokens included; another address is not affected",
    function()
      local good = h.token(uid("calm"))
      next_second()
      local flood = burst(host.port, "127.0.0.2", 12, function(i) return get("/api/tasks", "forged." .. i) end)
      local other = burst(host.port, "127.0.0.3", 3, function() return get("/api/tasks", good) end)
      assert.are.same({ [401] = 5, [429] = 7 }, tally(flood))
      assert.are.same({ [200] = 3 }, tally(other))
      local refused
      for _, r in ipairs(flood) do if r.status == 429 then refused = r end end
      assert.are.equal("1", refused.headers["retry-after"])
      local body = json.decode(refused.body)
      assert.are.equal("rate_limited", body.error.code, refused.body)
      assert.matches("5 per second per client address", body.error.message)
    end)

  it("counts authenticated requests too, and lets the address in again the next second", function()
    local a, b = h.token(uid("one")), h.token(uid("two"))
    next_second()
    -- two users behind one address share its budget
    local by = tally(burst(host.port, "127.0.0.4", 8, function(i) return get("/api/tags", i % 2 == 0 and a or b) end))
    assert.are.same({ [200] = 5, [429] = 3 }, by)
    next_second()
    assert.are.same({ [200] = 1 }, tally(burst(host.port, "127.0.0.4", 1, function() return get("/api/tags", a) end)))
  end)

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", function()
    next_second()
    local by = tally(burst(host.port, "127.0.0.5", 10, function(i)
      return get("/api/tasks", nil, "X-Forwarded-For: 198.51.100." .. i .. "\r\n")
    end))
    assert.are.same({ [401] = 5, [429] = 5 }, by)
    -- and on the host that trusts some proxies, from a peer it does not trust
    next_second()
    by = tally(burst(proxied.port, "127.0.0.6", 10, function(i)
      return get("/api/tasks", nil, "X-Forwarded-For: 198.51.100." .. i .. "\r\n")
    end))
    assert.are.same({ [401] = 5, [429] = 5 }, by)
  end)

  it("behind a trusted proxy counts the address it forwarded, not the proxy's, and not one the client wrote",
    function()
      next_second()
      -- one proxy (127.0.0.9) forwards for two clients: each has its own budget
      local by = tally(burst(proxied.port, "127.0.0.9", 14, function(i)
        local client = i <= 8 and "203.0.113.7" or "203.0.113.8"
        -- the client's own X-Forwarded-For (a spoof, left of what the proxy appended) is skipped
        return get("/api/tasks", nil, "X-Forwarded-For: 192.0.2." .. i .. ", " .. client .. "\r\n")
      end))
      assert.are.same({ [401] = 10, [429] = 4 }, by)
      -- a chain of two trusted proxies (127.0.1.0/24 and 127.0.0.9) in front of the
      -- client: its budget is the one 203.0.113.7 spent above
      local chained = burst(proxied.port, "127.0.1.20", 1, function()
        return get("/api/tasks", nil, "X-Forwarded-For: 203.0.113.7, 127.0.0.9\r\n")
      end)
      assert.are.equal(429, chained[1].status)
    end)

  it("does not limit the health, readiness and metrics endpoints", function()
    next_second()
    local raws = {}
    for i = 1, 12 do raws[i] = get(({ "/healthz", "/readyz", "/metrics" })[i % 3 + 1]) end
    local by = tally(send_from(host.port, "127.0.0.7", raws))
    assert.are.same({ [200] = 12 }, by)
  end)
end)

describe("TRUSTED_PROXIES", function()
  it("refuses an entry that is not an address or CIDR block, naming it", function()
    -- (bounded: were the entry accepted, the host would serve)
    local out, ok = h.sh("env TRUSTED_PROXIES='10.0.0.0/8, 10.1.2.3/33' PORT=0 WORKERS=1 timeout 10 " ..
      h.host_bin .. " run services/api 2>&1")
    assert.is_falsy(ok)
    assert.matches("TRUSTED_PROXIES: '10.1.2.3/33' is not an IP address or CIDR block", out, 1, true)
  end)
end)

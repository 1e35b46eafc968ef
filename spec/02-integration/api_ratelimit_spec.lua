-- The per-user rate limit of the authenticated routes (web.ratelimit through
-- web.guard), on one machine: counters in PostgreSQL (lua/state), shared by the host's
-- two workers. RATE_LIMIT_PER_SECOND=5: the sixth request of a user within one second
-- is 429 with Retry-After and the error body; other users are not affected.
local h = require "spec.helpers"
local json = require "json"

local uid = h.uid

local next_second = h.next_second

describe("per-user rate limit", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "services/api" }, workers = 2, env = { RATE_LIMIT_PER_SECOND = "5" } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  local function burst(token, n)
    local raws = {}
    for i = 1, n do
      raws[i] = "GET /api/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " ..
        token .. "\r\n\r\n"
    end
    local by = {}
    for _, r in ipairs(h.send_together(host.port, raws)) do by[r.status] = (by[r.status] or 0) + 1 end
    return by
  end

  it("lets 5 requests a second through per user, refuses the rest with 429; others unaffected", function()
    local a, b = h.token(uid("busy")), h.token(uid("calm"))
    next_second()
    local by = burst(a, 12)
    local other = burst(b, 3)
    assert.are.same({ [200] = 5, [429] = 7 }, by)
    assert.are.same({ [200] = 3 }, other)
  end)

  it("answers 429 with Retry-After and the error body, and lets the user in again the next second", function()
    local a = h.token(uid("retry"))
    next_second()
    for _ = 1, 5 do assert.are.equal(200, (host:request("GET", "/api/tags", { token = a }))) end
    local status, body, headers = host:request("GET", "/api/tags", { token = a })
    assert.are.equal(429, status)
    assert.are.equal("1", headers["retry-after"])
    assert.are.equal("rate_limited", body.error.code, json.encode(body))
    assert.matches("5 per second", body.error.message)
    next_second()
    assert.are.equal(200, (host:request("GET", "/api/tags", { token = a })))
  end)

  it("does not count requests without a valid token against anyone", function()
    next_second()
    for _ = 1, 8 do assert.are.equal(401, (host:request("GET", "/api/tasks", { token = "nope" }))) end
  end)
end)

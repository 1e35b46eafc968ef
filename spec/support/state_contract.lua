-- The behaviour of lua/state that both backends must show, driven through the
-- state-probe fixture bundle. Called from a describe block of
-- spec/02-integration/state_spec.lua (PostgreSQL) and of
-- spec/03-e2e/dapr_state_e2e_spec.lua (the real daprd with the Redis state store).
-- `host()` answers the started host (after lazy_setup ran); `busted` holds the
-- spec file's `it` and `assert` (its environment has them, a required module does not).
local h = require "spec.helpers"
local json = require "json"

return function(busted, host, expected_backend)
  local it, assert = busted.it, busted.assert
  local n = 0
  local function key(name)
    n = n + 1
    return string.format("%s-%d-%d-%d", name, os.time(), math.random(1, 1e9), n)
  end
  local function call(body)
    local status, res = host():request("POST", "/state", { body = body })
    assert.are.equal(200, status, json.encode(res))
    return res
  end

  it("uses the " .. expected_backend .. " backend", function()
    local status, res = host():request("GET", "/backend")
    assert.are.equal(200, status)
    assert.are.equal(expected_backend, res.name)
  end)

  it("gets what was set, with an etag; absent after delete", function()
    local k = key("plain")
    assert.is_false(call { op = "get", key = k }.found)
    local set = call { op = "set", key = k, value = { n = 1, tags = { "a" } } }
    assert.is_string(set.etag)
    local got = call { op = "get", key = k }
    assert.is_true(got.found)
    assert.are.same({ n = 1, tags = { "a" } }, got.value)
    assert.are.equal(set.etag, got.etag)
    assert.is_true(call { op = "delete", key = k }.deleted)
    assert.is_false(call { op = "get", key = k }.found)
    -- deleting what is absent is fine
    assert.is_true(call { op = "delete", key = k }.deleted)
  end)

  it("keeps strings, numbers and booleans as they were", function()
    for _, v in ipairs { "text", 42, true } do
      local k = key("scalar")
      call { op = "set", key = k, value = v }
      assert.are.equal(v, call { op = "get", key = k }.value)
    end
  end)

  it("writes with a stale etag fail with a conflict and change nothing", function()
    local k = key("etag")
    local e1 = call { op = "set", key = k, value = "one" }.etag
    local e2 = call { op = "set", key = k, value = "two", etag = e1, concurrency = "first-write" }.etag
    assert.are_not.equal(e1, e2)
    local stale = call { op = "set", key = k, value = "three", etag = e1, concurrency = "first-write" }
    assert.are.equal("conflict", stale.kind, json.encode(stale))
    assert.are.equal("two", call { op = "get", key = k }.value)
    assert.are.equal("conflict", call { op = "delete", key = k, etag = e1 }.kind)
    assert.are.equal("two", call { op = "get", key = k }.value)
    assert.is_true(call { op = "delete", key = k, etag = e2 }.deleted)
    assert.is_false(call { op = "get", key = k }.found)
  end)

  it("last-write ignores a stale etag, as daprd does", function()
    local k = key("last")
    local e1 = call { op = "set", key = k, value = "one" }.etag
    call { op = "set", key = k, value = "two" }
    assert.is_string(call { op = "set", key = k, value = "three", etag = e1 }.etag)
    assert.are.equal("three", call { op = "get", key = k }.value)
  end)

  it("first-write without an etag only creates; last-write overwrites", function()
    local k = key("first")
    assert.is_string(call { op = "set", key = k, value = "a", concurrency = "first-write" }.etag)
    local again = call { op = "set", key = k, value = "b", concurrency = "first-write" }
    assert.are.equal("conflict", again.kind, json.encode(again))
    assert.are.equal("a", call { op = "get", key = k }.value)
    -- (a key stays with one mode: state.redis remembers a first-write key and refuses
    -- a later write without its etag, so last-write is shown on a key of its own)
    local l = key("last")
    call { op = "set", key = l, value = "b" }
    local last = call { op = "set", key = l, value = "c" }
    assert.is_string(last.etag, json.encode(last))
    assert.are.equal("c", call { op = "get", key = l }.value)
  end)

  it("an entry with a ttl is gone after it", function()
    local k = key("ttl")
    call { op = "set", key = k, value = "brief", ttl = 1 }
    assert.are.equal("brief", call { op = "get", key = k }.value)
    assert.is_truthy(h.eventually(function() return call({ op = "get", key = k }).found == false end, 5))
    -- and first-write may create it again
    assert.is_string(call { op = "set", key = k, value = "again", concurrency = "first-write" }.etag)
  end)

  it("refuses bad keys, nil values, bad ttl and concurrency as invalid", function()
    assert.are.equal("invalid", call({ op = "get", key = "" }).kind)
    assert.are.equal("invalid", call({ op = "get", key = "a||b" }).kind)
    assert.are.equal("invalid", call({ op = "get", key = string.rep("k", 513) }).kind)
    assert.are.equal("invalid", call({ op = "set", key = key("x") }).kind)
    assert.are.equal("invalid", call({ op = "set", key = key("x"), value = 1, ttl = 0 }).kind)
    assert.are.equal("invalid", call({ op = "set", key = key("x"), value = 1, ttl = 1.5 }).kind)
    assert.are.equal("invalid", call({ op = "set", key = key("x"), value = 1, concurrency = "any" }).kind)
    assert.are.equal("invalid", call({ op = "incr", key = key("x") }).kind)
  end)

  it("counts concurrent increments exactly", function()
    local k = key("count")
    local body = json.encode { op = "incr", key = k, ttl = 30 }
    local raws = {}
    for i = 1, 20 do
      raws[i] = "POST /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n" ..
        "Content-Length: " .. #body .. "\r\n\r\n" .. body
    end
    local counts = {}
    for _, r in ipairs(h.send_together(host().port, raws)) do
      assert.are.equal(200, r.status, r.body)
      counts[#counts + 1] = assert(json.decode(r.body).count, r.body)
    end
    table.sort(counts)
    for i = 1, 20 do assert.are.equal(i, counts[i]) end
    assert.are.equal(20, call { op = "get", key = k }.value)
  end)

  it("restarts a counter whose ttl passed", function()
    local k = key("window")
    assert.are.equal(1, call({ op = "incr", key = k, ttl = 1 }).count)
    assert.are.equal(2, call({ op = "incr", key = k, ttl = 1 }).count)
    assert.is_truthy(h.eventually(function() return call({ op = "get", key = k }).found == false end, 5))
    assert.are.equal(1, call({ op = "incr", key = k, ttl = 1 }).count)
  end)
end

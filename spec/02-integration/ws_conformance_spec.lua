-- WebSocket conformance of /ws (RFC 6455) by the Autobahn|Testsuite case categories:
-- framing, pings/pongs, reserved bits, opcodes, fragmentation, UTF-8, close handling,
-- limits, compression (not negotiated). scripts/ws-conformance (a raw-socket client,
-- Python standard library) runs every case against services/websocket on a real
-- PostgreSQL; each case is one test here. OK and NON-STRICT (an outcome the RFC allows,
-- named in the runner) pass; a KNOWN-DEVIATION (libwebsockets 4.1 behaviour the host
-- cannot change, explained in the runner and docs/reliability.md) is reported pending,
-- never as a pass; anything else fails with what was expected and observed.
local h = require "spec.helpers"
local json = require "json"

local RUNNER = "/usr/bin/python3 scripts/ws-conformance"

local function case_ids()
  local out, ok = h.sh(RUNNER .. " --port 1 --list")
  assert(ok, "ws-conformance --list failed: " .. out)
  local ids = {}
  for id in out:gmatch("[^\n]+") do ids[#ids + 1] = id end
  return ids
end

local metric = h.metric

describe("ws conformance (RFC 6455, Autobahn case categories) against /ws", function()
  local host, results, summary, raw
  setup(function()
    -- the default WS_* limits: 64 KiB messages, 20 messages/s with a burst of 40
    host = h.start { bundles = { "services/api", "services/websocket" } }
    local out = h.sh(RUNNER .. " --port " .. host.port .. " --token " .. h.sh_quote(h.token("conformance")))
    raw = out
    results = {}
    for line in out:gmatch("[^\n]+") do
      local ok, r = pcall(json.decode, line)
      if ok and type(r) == "table" then
        if r.id then results[r.id] = r elseif r.summary then summary = r end
      end
    end
  end)
  teardown(function() if host then host:stop() end end)

  it("ran every case", function()
    assert.is_truthy(summary, "no summary from the runner:\n" .. tostring(raw))
    assert.are.equal(#case_ids(), summary.cases)
  end)

  for _, id in ipairs(case_ids()) do
    it("case " .. id, function()
      local r = results[id]
      assert.is_truthy(r, "case " .. id .. " has no result:\n" .. tostring(raw))
      if r.result == "KNOWN-DEVIATION" then
        pending(id .. " " .. r.what .. ": " .. r.why)
        return
      end
      assert(r.result == "OK" or r.result == "NON-STRICT", string.format(
        "%s %s (%s)\n  expected %s\n  observed %s", id, r.what, r.category,
        json.encode(r.expected), json.encode(r.observed)))
    end)
  end

  it("counts the connections it failed by their close codes in /metrics", function()
    assert.is_true(metric(host, "todo_host_ws_closes_total", 'code="1002"') >= 30)
    assert.is_true(metric(host, "todo_host_ws_closes_total", 'code="1007"') >= 10)
    assert.is_true(metric(host, "todo_host_ws_closes_total", 'code="1009"') >= 3)
    assert.is_truthy(h.eventually(function() return metric(host, "todo_host_ws_connections", "worker") == 0 end, 10),
      "connections left open after the run")
  end)
end)

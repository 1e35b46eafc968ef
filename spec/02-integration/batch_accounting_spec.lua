-- A coalesced batch's work is accounted to every request it serves (core/lua/batch.lua):
-- each request is charged its share of the batch's CPU time (its own `task.cpu_used`,
-- its access-log `cpu_ms`, its CPU budget), and the batch's log lines carry the ids of
-- all of its requests, not only of the one whose coroutine ran it.
local h = require "spec.helpers"
local json = require "json"
local socket = require "socket"

describe("a coalesced batch's accounting (through HTTP)", function()
  local host

  lazy_setup(function()
    host = h.start({ bundles = { "spec/fixtures/batch-probe" }, no_database = true })
  end)

  lazy_teardown(function()
    if host then host:stop() end
  end)

  it("charges each request its share of the batch's CPU and logs the batch with every request id", function()
    -- The first request holds the loader's only slot; the four sent while it does meet
    -- in one batch.
    local hold = socket.tcp()
    hold:settimeout(10)
    assert(hold:connect("127.0.0.1", host.port))
    hold:send("GET /probe/hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    h.sleep(0.1)
    local ids, raws = {}, {}
    for i = 1, 4 do
      ids[i] = "acct-" .. i .. "-" .. math.random(1, 1e9)
      raws[i] = "GET /probe/k" .. i .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: "
        .. ids[i] .. "\r\n\r\n"
    end
    local res = h.send_together(host.port, raws)
    local status = h.read_response(hold)
    hold:close()
    assert.are.equal(200, status)

    local burned
    for i, r in ipairs(res) do
      assert.are.equal(200, r.status)
      local body = json.decode(r.body)
      assert.are.equal(4, body.items, "request " .. i .. " was not in the batch of four")
      burned = burned or body.burned_ns
      assert.are.equal(burned, body.burned_ns)
    end
    assert.is_true(burned >= 30e6)

    -- The batch's log line names all four requests (besides the request_id of the one
    -- that ran it).
    local line
    h.eventually(function()
      for _, l in ipairs(host:log_lines()) do
        if l.msg == "probe batch ran" and l.items == 4 then line = l end
      end
      return line
    end)
    assert.is_table(line.request_ids, json.encode(line))
    local logged = {}
    for i, id in ipairs(line.request_ids) do logged[i] = id end
    table.sort(logged)
    local want = { table.unpack(ids) }
    table.sort(want)
    assert.are.same(want, logged)

    -- Each request's access-log line carries its share (a quarter of the burn at least);
    -- the one that ran the batch is not charged the whole of it.
    local cpu = {}
    h.eventually(function()
      for _, l in ipairs(host:log_lines()) do
        if l.msg == "request" and l.request_id and l.cpu_ms then cpu[l.request_id] = l.cpu_ms end
      end
      for _, id in ipairs(ids) do if not cpu[id] then return false end end
      return true
    end)
    local share_ms = burned / 4 / 1e6
    for _, id in ipairs(ids) do
      assert.is_true(cpu[id] >= share_ms, id .. " was charged " .. cpu[id] .. " ms, its share is " .. share_ms)
      assert.is_true(cpu[id] < burned / 1e6 * 0.75, id .. " was charged " .. cpu[id] .. " ms of " .. burned / 1e6)
    end
  end)
end)

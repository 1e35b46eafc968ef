-- services/websocket: a user's events reach a connection in event_id order and none is
-- lost, also when its two subscriptions (task-updates, reminders) deliver out of order.
-- Here the task-updates consumer is held back (its cursor rows locked by a psql session)
-- while a reminder, committed after a task change, is delivered first: the task event
-- must still come, before the reminder. (scripts/chaos found it lost; docs/reliability.md.)
local h = require "spec.helpers"
local json = require "json"
local wsc = require "spec.support.wsclient"

describe("websocket live order across the two subscriptions", function()
  local host
  setup(function() host = h.start { bundles = { "services/api", "services/websocket" } } end)
  teardown(function() if host then host:stop() end end)

  it("sends a held-back task event before the newer reminder, once each", function()
    local user = "order-ada"
    local c = wsc.open { port = host.port, token = h.token(user), seconds = 20, send = { { type = "ping" } } }
    assert.is_truthy(c:wait_count(2), c:stderr()) -- hello, pong: live events flow
    local session = h.psql_session(host.database_url)
    -- closed here, not by the collector: a host started later inherits the pipe to psql,
    -- and a pclose run by a later collection would then wait for ever
    finally(session.close)
    session.query("BEGIN")
    session.query("SELECT 1 FROM bus_cursors WHERE topic = 'task-updates' AND broadcast FOR UPDATE")
    local status, task = host:request("POST", "/api/tasks",
      { token = h.token(user), body = { title = "Water plants" } })
    assert.are.equal(201, status)
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin) ..
      " script spec/support/publish_reminder.lua " .. user .. " " .. task.id .. " 'Water plants'")
    assert(ok, out)
    -- the reminder (event 2) is delivered while the task event (1) is still held back
    local got = c:wait(function(m) return #wsc.of_type(m, "reminder.due") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    session.query("COMMIT")
    h.sleep(1.5) -- the task-updates consumer delivers its event now (a duplicate: dropped)
    local events = {}
    for _, m in ipairs(c:messages()) do
      if type(m) == "table" and m.event_id and m.type ~= "hello" then
        events[#events + 1] = m.type .. " " .. m.event_id
      end
    end
    assert.are.same({ "task.created 1", "reminder.due 2" }, events)
  end)
end)

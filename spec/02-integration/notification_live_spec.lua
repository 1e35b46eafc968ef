-- Live delivery of reminders (issue 15, with the websocket bundle of issue 14): a reminder
-- that fires reaches the user's open WebSocket connection as `reminder.due` within a
-- second or two of its time, and never another user's connection.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"
local wsc = require "spec.support.wsclient"

describe("live delivery of reminders over WebSocket", function()
  it("a due reminder reaches the user's connection, and only theirs", function()
    local host = n.start { bundles = { "services/api", "services/notification", "services/websocket" } }
    finally(function() host:stop() end)
    local user, other = "live-ada", "live-bob"
    local c = wsc.open { port = host.port, token = h.token(user), seconds = 30, send = { { type = "ping" } } }
    local o = wsc.open { port = host.port, token = h.token(other), seconds = 30, send = { { type = "ping" } } }
    assert.is_truthy(c:wait_count(2))
    assert.is_truthy(o:wait_count(2))
    local at = os.time() + 3
    local t = n.task(host, user, { title = "Call mum", due_at = n.iso(at + 600), reminders = { { at = n.iso(at) } } })
    local got = c:wait(function(m) return #wsc.of_type(m, "reminder.due") == 1 end, 10)
    local arrived = n.now()
    assert.is_truthy(got, json.encode(c:messages()))
    local r = wsc.of_type(got, "reminder.due")[1]
    assert.are.equal(t.id, r.reminder.task_id)
    assert.are.equal("Call mum", r.reminder.title)
    assert.are.equal(n.iso(at), r.reminder.remind_at)
    -- live: within two seconds of its time (the spec polls the client's record every 50 ms)
    assert.is_true(arrived - at < 2, "arrived " .. (arrived - at) .. " s after its time")
    h.sleep(0.5)
    assert.are.equal(0, #wsc.of_type(o:messages(), "reminder.due"))
  end)
end)

-- The scheduler across replicas and crashes (issue 15): three notification processes on
-- one database fire each reminder exactly once between them, and a notification process
-- killed with SIGKILL just before or just after a reminder's time fires it exactly once
-- after it restarts. Each host logs "reminder fired" per notification it committed: the
-- sum over hosts counts what was fired, independently of the database's unique guard.
local h = require "spec.helpers"
local n = require "spec.support.notify"

local function fired_in_log(host)
  local c = 0
  for _ in host:log():gmatch("reminder fired") do c = c + 1 end
  return c
end

describe("reminder scheduler replicas", function()
  it("three replicas fire each reminder once between them", function()
    local api = n.start { bundles = { "services/api", "services/notification" } }
    local replicas = { api }
    for i = 2, 3 do
      replicas[i] = n.start { bundles = { "services/notification" }, database_url = api.database_url,
        skip_migrate = true }
    end
    finally(function() for _, r in ipairs(replicas) do r:stop() end end)
    local now = os.time()
    local want = 0
    for i = 1, 40 do
      local at = now + 3 + (i % 3)
      n.task(api, "rep-" .. (i % 4), { title = "r" .. i, due_at = n.iso(at + 60),
        reminders = { { at = n.iso(at) }, { before = "PT60S" } } })
      want = want + 2
    end
    assert.truthy(h.eventually(function() return n.count(api) == want end, 15))
    h.sleep(1)
    assert.are.equal(want, n.count(api))
    local logged = 0
    for _, r in ipairs(replicas) do logged = logged + fired_in_log(r) end
    assert.are.equal(want, logged)
    assert.are.equal(tostring(want), h.psql("SELECT count(*) FROM bus_outbox WHERE topic = 'reminders'",
      api.database_url))
    assert.are.equal(tostring(want), h.psql("SELECT count(DISTINCT (schedule_id, remind_at)) FROM notifications",
      api.database_url))
    assert.are.equal("0", h.psql("SELECT count(*) FROM reminder_schedule WHERE state = 'scheduled'",
      api.database_url))
  end)

  for _, case in ipairs { { name = "just before", kill_at = -0.4 }, { name = "just after", kill_at = 0.02 } } do
    it("fires exactly once when the notification process is SIGKILLed " .. case.name .. " the time", function()
      local api = h.start { bundles = { "services/api" } }
      local notify = n.start { bundles = { "services/notification" }, database_url = api.database_url }
      finally(function() notify:stop(); api:stop() end)
      local at = os.time() + 2
      local tasks = {}
      for i = 1, 5 do
        tasks[i] = n.task(api, "kill-" .. i,
          { title = "k" .. i, due_at = n.iso(at + 600), reminders = { { at = n.iso(at) } } })
      end
      n.caught_up(notify)
      h.sleep(math.max(0, at + case.kill_at - n.now()))
      notify:kill()
      local before_restart = n.count(notify)
      notify:spawn()
      assert.truthy(notify:wait_ready(15), notify:log())
      assert.truthy(h.eventually(function() return n.count(notify) == 5 end, 8), notify:log())
      h.sleep(1)
      for _, t in ipairs(tasks) do assert.are.equal(1, n.count(notify, t.id)) end
      assert.are.equal("5", h.psql("SELECT count(*) FROM bus_outbox WHERE topic = 'reminders'", api.database_url))
      if case.kill_at < 0 then assert.are.equal(0, before_restart) end
    end)
  end
end)

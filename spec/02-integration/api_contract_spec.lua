-- The running Task API against its contract, spec/contracts/openapi.yaml: every route,
-- its successes and its errors, are recorded and then checked (status documented,
-- required headers present, bodies valid) by spec/support/openapi_check.py.
local h = require "spec.helpers"
local contract = require "spec.support.contract"

describe("Task API: OpenAPI contract", function()
  local host, token
  local call, observed = contract.recorder(function() return host, token end)

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    token = h.token("contract-" .. os.time())
  end)

  lazy_teardown(function() if host then host:stop() end end)

  it("every response matches the document", function()
    local json_ct = { ["Content-Type"] = "application/json" }
    local _, t = call("POST", "/api/tasks", { body = { title = "contract", tags = { "c" }, priority = "high",
      due_at = "2026-05-01T09:00:00+02:00", tz = "Europe/Paris", recurrence = { rule = "FREQ=DAILY" },
      reminders = { { before = "PT10M" } } } })
    local _, t2 = call("POST", "/api/tasks", { body = { title = "second" } })
    call("POST", "/api/tasks", { body = { title = "" } })
    call("POST", "/api/tasks", { body = "{nope", headers = json_ct })
    call("POST", "/api/tasks", { body = "title=x", headers = { ["Content-Type"] = "text/plain" } })
    call("POST", "/api/tasks", { token = false, body = { title = "x" } })

    call("GET", "/api/tasks")
    call("GET", "/api/tasks?limit=1&sort=due&status=pending&priority=high,none&tag=c&tags_mode=any")
    call("GET", "/api/tasks?q=contract")
    call("GET", "/api/tasks?limit=0")
    call("GET", "/api/tasks", { token = "garbage" })

    local url = "/api/tasks/" .. t.id
    call("GET", url)
    call("GET", url, { headers = { ["If-None-Match"] = '"1"' } })
    call("GET", "/api/tasks/00000000-0000-4000-8000-000000000000")
    call("PATCH", url, { body = { description = "d" }, headers = { ["If-Match"] = '"1"' } })
    call("PATCH", url, { body = { description = "e" }, headers = { ["If-Match"] = '"1"' } })
    call("PATCH", url, { body = { bogus = true } })
    call("PATCH", url, { body = "[", headers = json_ct })
    call("PATCH", url, { body = "x", headers = { ["Content-Type"] = "text/plain" } })
    call("POST", url .. "/complete")
    call("POST", url .. "/complete", { headers = { ["If-Match"] = '"1"' } })
    call("POST", url .. "/reopen")
    call("POST", "/api/tasks/00000000-0000-4000-8000-000000000000/reopen")
    call("POST", "/api/tasks/bulk",
      { body = { action = "update", ids = { t.id, t2.id }, changes = { priority = "low" } } })
    call("POST", "/api/tasks/bulk", { body = { action = "reschedule", filter = { tag = "c" }, time = "14:00" } })
    call("POST", "/api/tasks/bulk",
      { body = { action = "complete", ids = { "00000000-0000-4000-8000-000000000000" } } })
    call("POST", "/api/tasks/bulk", { body = { action = "explode", ids = { t.id } } })
    call("POST", "/api/tasks/bulk", { body = "{", headers = json_ct })
    call("POST", "/api/tasks/bulk", { body = "x", headers = { ["Content-Type"] = "text/plain" } })
    call("GET", "/api/tags")
    call("GET", "/api/tags?x=1")
    call("GET", "/api/recurrence/preview?rule=FREQ%3DWEEKLY%3BBYDAY%3DMO&tz=Europe/Paris&count=3")
    call("GET", "/api/recurrence/preview?rule=FREQ%3DNEVER")
    call("GET", "/api/recurrence/preview?rule=FREQ%3DDAILY", { token = false })
    -- history (recorded by the consumer a moment after each change)
    -- (until the newest entry is the task's current version: undoing it must find no later change)
    h.eventually(function()
      local _, cur = host:request("GET", url, { token = token })
      local s, b = host:request("GET", url .. "/history", { token = token })
      return s == 200 and #b.items >= 3 and type(cur) == "table" and b.items[1].version == cur.version
    end, 10)
    local _, hist = call("GET", url .. "/history?limit=3")
    call("GET", url .. "/history?order=asc")
    call("GET", "/api/tasks/00000000-0000-4000-8000-000000000000/history")
    call("GET", "/api/activity")
    call("GET", "/api/activity?limit=0")
    call("GET", "/api/activity", { token = false })
    local latest = hist.items[1].id
    assert.are.equal(412, (call("POST", "/api/activity/" .. hist.items[2].id .. "/undo"))) -- changed since
    assert.are.equal(200, (call("POST", "/api/activity/" .. latest .. "/undo")))
    assert.are.equal(404, (call("POST", "/api/activity/99999999/undo")))
    assert.are.equal(404, (call("POST", "/api/activity/x/undo")))
    call("DELETE", url .. "?scope=everything")
    call("DELETE", url, { headers = { ["If-Match"] = '"1"' } })
    call("POST", "/api/tasks/bulk", { body = { action = "delete", ids = { t2.id } } })
    call("DELETE", url)
    call("DELETE", url)

    contract.check(observed)
  end)
end)

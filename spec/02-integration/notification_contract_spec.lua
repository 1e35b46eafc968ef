-- The notification bundle's routes against spec/contracts/openapi.yaml (the operations
-- marked `x-bundle: notification`): every route, its successes and its errors, recorded
-- and checked by spec/support/openapi_check.py (status documented, bodies valid).
local h = require "spec.helpers"
local contract = require "spec.support.contract"
local n = require "spec.support.notify"
local json = require "json"

describe("notification routes: OpenAPI contract", function()
  it("every response matches the document", function()
    local host = n.start()
    finally(function() host:stop() end)
    local token = h.token("contract-n")
    local call, observed = contract.recorder(function() return host, token end)
    local json_ct = { ["Content-Type"] = "application/json" }
    local t = n.task(host, "contract-n", { title = "c", due_at = n.iso(os.time() + 60),
      reminders = { { at = n.iso(os.time() + 2) } } })
    local fresh = n.task(host, "contract-n", { title = "never" })
    assert(h.eventually(function() return n.count(host, t.id) == 1 end, 6))

    call("PUT", "/api/notification-settings", { body = { webhook_url = "https://hooks.example.com/n" } })
    call("PUT", "/api/notification-settings", { body = { webhook_url = "https://hooks.example.com/m" } })
    call("PUT", "/api/notification-settings", { body = { webhook_url = "http://hooks.example.com/n" } })
    call("PUT", "/api/notification-settings", { body = "{", headers = json_ct })
    call("PUT", "/api/notification-settings", { body = "x", headers = { ["Content-Type"] = "text/plain" } })
    call("PUT", "/api/notification-settings", { token = false, body = {} })
    call("GET", "/api/notification-settings")
    call("GET", "/api/notification-settings", { token = "garbage" })

    call("GET", "/api/notifications")
    local _, page = call("GET", "/api/notifications?unread=true&limit=1")
    call("GET", "/api/notifications?limit=x")
    call("GET", "/api/notifications", { token = false })
    call("GET", "/api/notifications/unread-count")
    call("GET", "/api/notifications/unread-count?x=1")
    call("GET", "/api/notifications/unread-count", { token = false })
    local id = page.items[1].id
    call("POST", "/api/notifications/" .. id .. "/read")
    call("POST", "/api/notifications/" .. id .. "/read", { token = h.token("someone-else") })
    call("POST", "/api/notifications/" .. id .. "/read", { token = false })
    call("POST", "/api/notifications/read-all")
    call("POST", "/api/notifications/read-all", { token = false })

    call("POST", "/api/tasks/" .. t.id .. "/snooze", { body = { ["for"] = "PT10M" } })
    call("POST", "/api/tasks/" .. t.id .. "/snooze", { body = { ["for"] = "soon" } })
    call("POST", "/api/tasks/" .. t.id .. "/snooze", { body = "{", headers = json_ct })
    call("POST", "/api/tasks/" .. t.id .. "/snooze", { body = "x", headers = { ["Content-Type"] = "text/plain" } })
    call("POST", "/api/tasks/" .. t.id .. "/snooze", { token = false, body = {} })
    call("POST", "/api/tasks/" .. fresh.id .. "/snooze", { body = { ["for"] = "PT10M" } })
    call("POST", "/api/tasks/00000000-0000-4000-8000-000000000000/snooze", { body = { ["for"] = "PT10M" } })

    call("GET", "/api/notification-settings/deliveries")
    call("GET", "/api/notification-settings/deliveries?limit=0")
    call("GET", "/api/notification-settings/deliveries", { token = false })
    call("PUT", "/api/notification-settings", { body = { webhook_url = json.null } })

    contract.check(observed, { bundle = "notification" })
  end)
end)

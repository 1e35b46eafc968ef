-- The notification bundle, unchanged, with BUS=dapr (issue 15), against a TEST DOUBLE of
-- the Dapr sidecar (spec/support/dapr_double.py; the real daprd is in dapr_e2e_spec.lua
-- for the bus itself): the task event the API publishes through the sidecar is delivered
-- to the notification group's route, the reminder fires from the schedule (the scheduler
-- needs no broker), and its `reminder.due` goes out through the outbox relay to the
-- sidecar's publish API on `reminders`, keyed by the user. As in the cluster, the API
-- and the notification bundle run in two processes, each with its own sidecar (a
-- process serves one Dapr app: two bundles would both declare GET /dapr/subscribe); both
-- relays share the outbox, so either sidecar may carry an event.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local double_client = require "spec.fixtures.dapr-double.client"
local crypto = require "crypto"

describe("notification with BUS=dapr", function()
  it("schedules from a delivered task event and publishes reminder.due through the sidecar", function()
    local app_token = "app-" .. crypto.hex(crypto.random_bytes(8))
    local db = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/api services/notification")
    assert(ok, out)
    local api_port, port = h.free_port(), h.free_port()
    local api_double = double_client.start { app_port = api_port, app_token = app_token }
    local double = double_client.start { app_port = port, app_token = app_token }
    local dapr_env = { BUS = "dapr", APP_API_TOKEN = app_token }
    local api = n.start { bundles = { "services/api" }, port = api_port, database_url = db, skip_migrate = true,
      env = { BUS = "dapr", APP_API_TOKEN = app_token, DAPR_HTTP_PORT = api_double.port } }
    dapr_env.DAPR_HTTP_PORT = double.port
    local host = n.start { bundles = { "services/notification" }, port = port, database_url = db,
      skip_migrate = true, env = dapr_env }
    finally(function() host:stop(); api:stop(); double:stop(); api_double:stop() end)
    assert.truthy(double:subscribed(10))
    local listed = require("json").encode(double:state().subscribe)
    assert.truthy(listed:find("task-events", 1, true), listed)
    local function published(topic, subject)
      for _, d in ipairs { api_double, double } do
        for _, call in ipairs(d:published()) do
          if call.topic == topic and type(call.body) == "table" and call.body.subject == subject then
            return call
          end
        end
      end
    end

    local t = n.task(api, "dapr-user", { title = "dapr reminder", reminders = { { at = n.iso(os.time() + 2) } } })
    -- the API's task.created went to the sidecar; daprd delivers it to the subscribers
    local created = h.eventually(function()
      local call = published("task-events", t.id)
      return call and call.body
    end, 10)
    assert.truthy(created, api_double:log())
    local res = double:deliver { topic = "task-events", event = created }
    assert.are.equal("SUCCESS", res.outcome)
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 1 end, 8), host:log())
    -- reminder.due published through the sidecar, partition key = the user
    local due = h.eventually(function() return published("reminders", t.id) end, 10)
    assert.truthy(due, double:log())
    assert.are.equal("reminder.due", due.body.type)
    assert.are.equal("dapr reminder", due.body.data.title)
    assert.are.equal("dapr-user", due.body.data.user_id)
    assert.are.equal("dapr-user", due.metadata.partitionKey)
    -- a redelivery of the task event changes nothing
    assert.are.equal("SUCCESS", double:deliver({ topic = "task-events", event = created }).outcome)
    h.sleep(1)
    assert.are.equal(1, n.count(host, t.id))
  end)
end)

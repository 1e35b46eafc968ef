-- BUS=dapr, a delivery that arrives while the database is unreachable: the app holds it
-- and handles it the moment the database answers again (SUCCESS), instead of answering
-- RETRY at once and leaving the event to daprd's growing retry backoff, with the topic's
-- later deliveries queued behind it (`make chaos DAPR=1` saw events reach WebSocket
-- clients 2 s after a 3 s outage). The outage is a TCP gate in front of the real
-- PostgreSQL (spec/support/tcp_gate.py); daprd's side of the call is played by the spec.
local h = require "spec.helpers"
local daprd = require "spec.support.daprd"
local crypto = require "crypto"
local json = require "json"
local socket = require "socket"

local APP_TOKEN = "app-token-" .. crypto.hex(crypto.random_bytes(8))
local SHUT_SECONDS = 1.5

local function event()
  return { specversion = "1.0", id = crypto.uuid_v7(), source = "todo-chatbot/api", type = "task.created",
    subject = "t1", datacontenttype = "application/json", data = { task = { id = "t1" } } }
end

describe("BUS=dapr delivery during a database outage", function()
  local host, gate, dir

  lazy_setup(function()
    local db = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/api")
    assert(ok, "migrate failed: " .. out)
    dir = h.sh("mktemp -d /tmp/dapr-outage.XXXXXX")
    local gate_port = h.free_port()
    local pg_port = assert(db:match(":(%d+)/[^/]+$"))
    gate = daprd.spawn(dir, "gate", {}, "python3 spec/support/tcp_gate.py " .. gate_port .. " " .. pg_port .. " "
      .. SHUT_SECONDS)
    assert(h.eventually(function() return daprd.read(gate.log):find("ready", 1, true) end, 10),
      "tcp_gate did not start:\n" .. daprd.read(gate.log))
    host = h.start {
      database_url = (db:gsub(":" .. pg_port .. "/", ":" .. gate_port .. "/")),
      bundles = { "spec/fixtures/dapr-consumer" },
      env = { BUS = "dapr", DAPR_HTTP_PORT = h.free_port(), APP_API_TOKEN = APP_TOKEN, DAPR_RELAY = "off" },
    }
  end)

  lazy_teardown(function()
    if host then host:stop() end
    daprd.stop(gate)
    if dir then os.execute("rm -rf " .. h.sh_quote(dir)) end
  end)

  local function deliver(ev)
    local t0 = socket.gettime()
    local status, body = host:request("POST", "/dapr/events/pubsub/task-events", {
      headers = { ["dapr-api-token"] = APP_TOKEN, ["Content-Type"] = "application/cloudevents+json" },
      body = ev, timeout = 30 })
    return status, body, socket.gettime() - t0
  end

  local function seen(id)
    local _, body = host:request("GET", "/seen")
    for _, row in ipairs(body.seen or {}) do
      if row.event_id == id then return true end
    end
    return false
  end

  it("holds the delivery through the outage and answers SUCCESS once the database is back", function()
    local status, body = deliver(event())
    assert.are.equal(200, status)
    assert.are.same({ status = "SUCCESS" }, body)

    os.execute("kill -USR1 " .. gate.pid) -- every connection cut, new ones refused for SHUT_SECONDS
    h.sleep(0.1)
    local ev = event()
    local elapsed
    status, body, elapsed = deliver(ev)
    assert.are.equal(200, status)
    assert.are.same({ status = "SUCCESS" }, body, json.encode(body) .. " after " .. elapsed .. " s")
    assert.is_true(elapsed >= SHUT_SECONDS - 0.5, "answered after " .. elapsed .. " s: during the outage")
    assert.is_true(seen(ev.id))
  end)
end)

-- Issue 19 on the Dapr path, with REAL sidecars: the api and websocket bundles each
-- beside its own daprd over Redis Streams (dapr/local/), both reaching PostgreSQL
-- through a TCP gate (spec/support/tcp_gate.py) that the spec shuts for a while, as a
-- database stopped and started again. While it is shut the API answers 503 at once and
-- the WebSocket stays up; a backlog of task-updates events queues in front of the
-- websocket service's sidecar meanwhile (the deliveries its consumer held or had not
-- reached yet when the database went away, as under load); once the gate listens again
-- the first task created must reach the user's WebSocket client within RECOVERY_SECONDS
-- of that moment, the backlog included.
--
-- The backlog is what `make chaos DAPR=1` tripped on: daprd delivers one event at a
-- time (`concurrency: 1`), so the app's round trips per delivery are the topic's
-- throughput; the websocket group's deliveries (idempotent) now take the fast path of
-- bus.consumer (docs/reliability.md, "With daprd sidecars").
local h = require "spec.helpers"
local daprd = require "spec.support.daprd"
local crypto = require "crypto"
local json = require "json"
local socket = require "socket"
local wsc = require "spec.support.wsclient"

local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))
local SHUT_SECONDS = 3
local BACKLOG = tonumber(os.getenv("DAPR_RECOVERY_BACKLOG") or "") or 50
-- The issue's figure, from the moment the database accepts connections again.
local RECOVERY_SECONDS = tonumber(os.getenv("DAPR_RECOVERY_SECONDS") or "") or 1.0

describe("BUS=dapr, PostgreSQL away and back (real daprd, Redis Streams)", function()
  local dir, redis, gate, bin
  local api, api_dapr, wshost, ws_dapr

  local function logs()
    return "\nws host:\n" .. wshost:log():sub(-3000) .. "\nws daprd:\n" .. daprd.read(ws_dapr.log):sub(-3000) ..
      "\napi host:\n" .. api:log():sub(-3000) .. "\ngate:\n" .. daprd.read(gate.log)
  end

  local function app_with_sidecar(app_id, bundle, db, resources)
    local port, http_port = h.free_port(), h.free_port()
    local host = h.start {
      port = port, database_url = db, bundles = { bundle }, skip_migrate = true,
      env = { BUS = "dapr", DAPR_HTTP_PORT = http_port, APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN,
        POD_NAME = app_id .. "-0", PG_POOL_TIMEOUT_MS = 1000, LOG_LEVEL = "warn" },
    }
    local side = daprd.sidecar(dir, { app_id = app_id, app_port = port, resources = resources, bin = bin,
      http_port = http_port,
      env = { APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN, POD_NAME = app_id .. "-0" } })
    return host, side
  end

  lazy_setup(function()
    bin = daprd.binary()
    local redis_port
    dir, redis, redis_port = daprd.redis()
    local resources = daprd.resources(dir, redis_port, { "pubsub.yaml", "pubsub-broadcast.yaml", "resiliency.yaml" })
    local db = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin) ..
      " migrate services/api services/websocket")
    assert(ok, "migrate failed: " .. out)
    local pg_port = assert(db:match(":(%d+)/[^/]+$"))
    local gate_port = h.free_port()
    gate = daprd.spawn(dir, "gate", {}, "python3 spec/support/tcp_gate.py " .. gate_port .. " " .. pg_port .. " "
      .. SHUT_SECONDS)
    assert(h.eventually(function() return daprd.read(gate.log):find("ready", 1, true) end, 10),
      "tcp_gate did not start:\n" .. daprd.read(gate.log))
    local gated = db:gsub(":" .. pg_port .. "/", ":" .. gate_port .. "/")
    wshost, ws_dapr = app_with_sidecar("websocket", "services/websocket", gated, resources)
    api, api_dapr = app_with_sidecar("api", "services/api", gated, resources)
  end)

  lazy_teardown(function()
    if api then api:stop() end
    if wshost then wshost:stop() end
    daprd.stop(api_dapr)
    daprd.stop(ws_dapr)
    daprd.stop(gate)
    daprd.stop(redis)
    h.sleep(0.5)
    daprd.remove_dir(dir)
  end)

  -- An event the websocket service delivers to nobody (not in its log): it costs the
  -- delivery and nothing else, as an event of another user would.
  local function publish_filler()
    local ev = { specversion = "1.0", id = crypto.uuid_v7(), source = "todo-chatbot/spec", type = "task.updated",
      subject = "filler", datacontenttype = "application/json", data = { filler = true } }
    return h.request("POST", "/v1.0/publish/pubsub-broadcast/task-updates", { port = api_dapr.http_port,
      body = json.encode(ev), timeout = 5,
      headers = { ["Content-Type"] = "application/cloudevents+json", ["dapr-api-token"] = API_TOKEN } })
  end

  local function created_at(c, id)
    for _, r in ipairs(c:records()) do
      local m = r.msg
      if type(m) == "table" and m.type == "task.created" and m.task and m.task.id == id then return r.at end
    end
  end

  it("answers 503 while it is away, keeps the WebSocket, and delivers the first task within a second of its return",
    function()
      local user = h.uid("dapr-recovery")
      local token = h.token(user)
      local c = wsc.open { port = wshost.port, token = token, seconds = 60 }
      assert.is_truthy(c:wait_count(1), c:stderr())
      h.sleep(1.2) -- past the hold after hello
      local status, warm = api:request("POST", "/api/tasks", { token = token, body = { title = "before" } })
      assert.are.equal(201, status)
      assert.is_truthy(h.eventually(function() return created_at(c, warm.id) end, 30),
        "the warm-up task never reached the client" .. logs())

      os.execute("kill -USR1 " .. gate.pid)
      h.sleep(0.3)
      local t0 = socket.gettime()
      local body
      status, body = api:request("POST", "/api/tasks", { token = token, body = { title = "during" }, timeout = 10 })
      local answered = socket.gettime() - t0
      assert.are.equal(503, status, json.encode(body))
      assert.are.equal("unavailable", body.error.code)
      assert.is_true(answered < 3, "the 503 took " .. answered .. " s")
      for _ = 1, BACKLOG do
        assert.are.equal(204, (publish_filler()))
      end

      local reopened
      assert.is_truthy(h.eventually(function()
        reopened = tonumber(daprd.read(gate.log):match("open (%d+%.%d+)"))
        return reopened
      end, SHUT_SECONDS + 10), "the gate never opened again")
      local task
      while not task and socket.gettime() - reopened < 10 do
        local s, b = api:request("POST", "/api/tasks", { token = token, body = { title = "after" }, timeout = 2 })
        if s == 201 then task = b else h.sleep(0.02) end
      end
      assert.is_truthy(task, "the API did not serve again within 10 s" .. logs())
      local created = socket.gettime() - reopened
      local at = h.eventually(function() return created_at(c, task.id) end, 30)
      assert.is_truthy(at, "the task never reached the client" .. logs())
      local took = at - reopened
      assert.is_true(took <= RECOVERY_SECONDS, string.format(
        "the first task after the database's return reached the WebSocket client %.3f s after it (created at " ..
        "+%.3f s, %d events queued during the outage)", took, created, BACKLOG) .. logs())
      for _, r in ipairs(c:records()) do
        assert.is_nil(r.closed, "the WebSocket closed: " .. json.encode(r))
      end
    end)
end)

-- BUS=dapr end to end for the WebSocket bundle (issue 14), with REAL sidecars: the api
-- bundle beside its daprd and the websocket bundle beside another, over Redis Streams
-- (the components of dapr/local/; task-updates through the `pubsub-broadcast`
-- component). A task change made through the API must reach a client connected to the
-- websocket process, with the id of the per-user log; a resume on a new connection
-- replays it. daprd comes from scripts/install-daprd (built if missing, never skipped).
local h = require "spec.helpers"
local daprd = require "spec.support.daprd"
local crypto = require "crypto"
local json = require "json"
local wsc = require "spec.support.wsclient"

local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))

-- The process helpers every Dapr spec shares (spec/support/daprd.lua).
local read, spawn, stop = daprd.read, daprd.spawn, daprd.stop

describe("WebSocket over Dapr end to end (real daprd, Redis Streams)", function()
  local dir, redis, daprd_bin, db
  local api, wshost, api_dapr, ws_dapr

  local function app_with_sidecar(app_id, bundle, resources)
    local app_port, http_port = h.free_port(), h.free_port()
    local grpc_port, internal_port = h.free_port(), h.free_port()
    local host = h.start {
      port = app_port, database_url = db, bundles = { bundle }, skip_migrate = true,
      env = { BUS = "dapr", DAPR_HTTP_PORT = http_port, APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN,
        POD_NAME = app_id .. "-0" },
    }
    local sidecar = spawn(dir, app_id .. "-daprd",
      { APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN, POD_NAME = app_id .. "-0" },
      table.concat({ h.sh_quote(daprd_bin), "--app-id", app_id, "--app-port", app_port,
        "--app-protocol http --app-channel-address 127.0.0.1",
        "--dapr-http-port", http_port, "--dapr-grpc-port", grpc_port,
        "--dapr-internal-grpc-port", internal_port, "--dapr-listen-addresses 127.0.0.1",
        "--enable-metrics=false --log-level info",
        "--resources-path", h.sh_quote(resources) }, " "))
    local ready = h.eventually(function()
      return h.request("GET", "/v1.0/healthz", { port = http_port, timeout = 1 }) == 204
    end, 60)
    assert(ready, app_id .. "'s daprd did not become ready:\n" .. read(sidecar.log))
    return host, sidecar
  end

  lazy_setup(function()
    local out, ok = h.sh("scripts/install-daprd")
    assert(ok, "scripts/install-daprd failed (this spec needs daprd):\n" .. out)
    daprd_bin = out:match("([^\n]+)$")
    assert(read(daprd_bin) ~= "", "no daprd at " .. tostring(daprd_bin))
    dir = h.sh("mktemp -d /tmp/ws-dapr-e2e.XXXXXX")
    local redis_port = h.free_port()
    redis = spawn(dir, "redis", {}, "redis-server --port " .. redis_port ..
      " --bind 127.0.0.1 --save '' --appendonly no --dir " .. h.sh_quote(dir))
    assert(h.eventually(function()
      return h.sh("redis-cli -p " .. redis_port .. " ping") == "PONG"
    end, 10), "redis-server did not start:\n" .. read(redis.log))
    local resources = dir .. "/resources"
    os.execute("mkdir -p " .. resources)
    for _, name in ipairs { "pubsub.yaml", "pubsub-broadcast.yaml", "resiliency.yaml" } do
      local text = read("dapr/local/" .. name):gsub("localhost:6379", "127.0.0.1:" .. redis_port)
      local f = assert(io.open(resources .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end
    db = h.new_database()
    out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin) ..
      " migrate services/api services/websocket")
    assert(ok, "migrate failed: " .. out)
    wshost, ws_dapr = app_with_sidecar("websocket", "services/websocket", resources)
    api, api_dapr = app_with_sidecar("api", "services/api", resources)
  end)

  lazy_teardown(function()
    if api then api:stop() end
    if wshost then wshost:stop() end
    stop(api_dapr)
    stop(ws_dapr)
    stop(redis)
    h.sleep(0.5)
    daprd.remove_dir(dir)
  end)

  it("delivers a REST change to the user's WebSocket through the broadcast pubsub, then replays it", function()
    local user = "ws-dapr-" .. os.time() .. "-" .. math.random(1, 1e6)
    local c = wsc.open { port = wshost.port, token = h.token(user), seconds = 40 }
    assert.is_truthy(c:wait_count(1), c:stderr())
    h.sleep(1.2) -- past the hold after hello
    local status, task = api:request("POST", "/api/tasks", { token = h.token(user), body = { title = "Via Dapr" } })
    assert.are.equal(201, status)
    local got = c:wait(function(m) return #wsc.of_type(m, "task.created") == 1 end, 30)
    assert.is_truthy(got, "the event never reached the client.\nclient: " .. json.encode(c:messages()) ..
      "\nws host:\n" .. wshost:log() .. "\nws daprd:\n" .. read(ws_dapr.log) .. "\napi daprd:\n" .. read(api_dapr.log))
    local ev = wsc.of_type(got, "task.created")[1]
    assert.are.same(task, ev.task)
    assert.are.equal(1, ev.event_id)
    local again = wsc.open { port = wshost.port, token = h.token(user), seconds = 5,
      send = { { type = "resume", after = 0 } } }
    got = again:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end)
    assert.is_truthy(got, json.encode(again:messages()))
    assert.are.same(task, wsc.of_type(got, "task.created")[1].task)
  end)
end)

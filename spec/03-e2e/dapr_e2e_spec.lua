-- BUS=dapr end to end with the REAL sidecar: the api bundle and the dapr-consumer
-- fixture bundle, each beside its own daprd (built by scripts/install-daprd, cached
-- outside the repository), over Redis Streams (Debian's redis-server) with the
-- components of dapr/local/. A task change made through the API must reach the
-- consumer's work group and its broadcast group. Tokens are on in both directions.
--
-- daprd is not optional here: when it is missing this spec builds it (or waits for a
-- build in progress, see scripts/install-daprd), and fails if that fails. It never
-- turns into a skipped test that would look like a pass.
local h = require "spec.helpers"
local daprd = require "spec.support.daprd"
local crypto = require "crypto"

local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))

local function file_exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end

local uid = h.uid

-- The process helpers every Dapr spec shares (spec/support/daprd.lua).
local read, spawn, stop = daprd.read, daprd.spawn, daprd.stop

describe("Dapr end to end (real daprd, Redis Streams)", function()
  local dir, redis, daprd_bin, db
  local api, consumer, api_dapr, consumer_dapr

  -- Start an app (todo-host) and its daprd; returns host, daprd process, ports.
  local function app_with_sidecar(app_id, bundle, resources)
    local app_port, http_port = h.free_port(), h.free_port()
    local grpc_port, internal_port = h.free_port(), h.free_port()
    local host = h.start {
      port = app_port, database_url = db, bundles = { bundle },
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
    sidecar.http_port = http_port
    -- /v1.0/healthz turns 204 once daprd reached the app and subscribed.
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
    assert(file_exists(daprd_bin), "no daprd at " .. tostring(daprd_bin))
    assert(h.sh("command -v redis-server") ~= "", "redis-server is missing (apt-get install redis-server)")

    dir = h.sh("mktemp -d /tmp/dapr-e2e.XXXXXX")
    local redis_port = h.free_port()
    redis = spawn(dir, "redis", {}, "redis-server --port " .. redis_port ..
      " --bind 127.0.0.1 --save '' --appendonly no --dir " .. h.sh_quote(dir))
    assert(h.eventually(function()
      return h.sh("redis-cli -p " .. redis_port .. " ping") == "PONG"
    end, 10), "redis-server did not start:\n" .. read(redis.log))

    -- The committed local components, pointed at this Redis.
    local resources = dir .. "/resources"
    os.execute("mkdir -p " .. resources)
    for _, name in ipairs { "pubsub.yaml", "pubsub-broadcast.yaml", "resiliency.yaml" } do
      local text = read("dapr/local/" .. name):gsub("localhost:6379", "127.0.0.1:" .. redis_port)
      local f = assert(io.open(resources .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end

    -- One database for both services, as in the cluster.
    db = h.new_database()
    out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin) .. " migrate services/api")
    assert(ok, "migrate failed: " .. out)
    consumer, consumer_dapr = app_with_sidecar("dapr-consumer", "spec/fixtures/dapr-consumer", resources)
    api, api_dapr = app_with_sidecar("api", "services/api", resources)
  end)

  lazy_teardown(function()
    if api then api:stop() end
    if consumer then consumer:stop() end
    stop(api_dapr)
    stop(consumer_dapr)
    stop(redis)
    h.sleep(0.5)
    daprd.remove_dir(dir)
  end)

  local function seen_by(grp, subject)
    local status, body = consumer:request("GET", "/seen")
    if status ~= 200 then return nil end
    for _, row in ipairs(body.seen) do
      if row.grp == grp and row.subject == subject then return row end
    end
  end

  it("delivers a task change made through the API to the consumer (work and broadcast groups)", function()
    local user = uid("erin")
    local status, task = api:request("POST", "/api/tasks",
      { token = h.token(user), body = { title = "Water the plants" } })
    assert.are.equal(201, status)
    local row = h.eventually(function() return seen_by("dapr-consumer", task.id) end, 30)
    assert.is_truthy(row, "task-events never reached the consumer.\napi:\n" .. api:log() .. "\napi daprd:\n" ..
      read(api_dapr.log) .. "\nconsumer daprd:\n" .. read(consumer_dapr.log) .. "\nconsumer:\n" .. consumer:log())
    assert.are.equal("task.created", row.type)
    local b = h.eventually(function() return seen_by("broadcast", task.id) end, 30)
    assert.is_truthy(b, "task-updates never reached the broadcast consumer:\n" .. read(consumer_dapr.log))
  end)

  it("redelivers after a failed handler until it succeeds, once per event", function()
    consumer:request("POST", "/fail", { body = { times = 1, group = "dapr-consumer" } })
    local user = uid("frank")
    local status, task = api:request("POST", "/api/tasks", { token = h.token(user), body = { title = "Retry me" } })
    assert.are.equal(201, status)
    local row = h.eventually(function() return seen_by("dapr-consumer", task.id) end, 60)
    assert.is_truthy(row, "the retried event never arrived:\n" .. read(consumer_dapr.log))
    assert.matches("dapr delivery: retry", consumer:log(), 1, true)
  end)
end)

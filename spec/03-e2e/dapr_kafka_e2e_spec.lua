-- BUS=dapr end to end over a REAL Kafka broker: Apache Kafka 3.9 in KRaft mode
-- (scripts/kafka, jars from Maven Central), SASL/SCRAM over TLS like Redpanda
-- Cloud, and daprd (scripts/install-daprd) loading the CLUSTER's components,
-- dapr/cluster/*.yaml, as committed. What differs from the cluster: the Secret
-- "redpanda" comes from a local file secret store named "kubernetes" (brokers,
-- user and password of this broker), and the components trust the broker's
-- self-signed certificate (caCert). Three topics with three partitions each, the
-- api and the dapr-consumer fixture each beside its own daprd: an event reaches
-- the consumer's work group (its app-id) and its per-pod broadcast group, once.
--
-- Neither daprd nor the broker is optional: when missing they are built or
-- fetched, and the spec fails if that fails.
local h = require "spec.helpers"
local daprd = require "spec.support.daprd"
local crypto = require "crypto"
local json = require "json"

local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))
local KAFKA_USER, KAFKA_PASSWORD = "todo", "pw-" .. crypto.hex(crypto.random_bytes(8))
local TOPICS = { "task-events", "reminders", "task-updates" }

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function spawn(dir, name, env, cmd)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. h.sh_quote(v) end
  local line = string.format("env %s %s >>%s/%s.log 2>&1 & echo $! >%s/%s.pid",
    table.concat(parts, " "), cmd, dir, name, dir, name)
  os.execute("sh -c " .. h.sh_quote(line) .. " >/dev/null 2>&1")
  return { pid = tonumber(read(dir .. "/" .. name .. ".pid")), log = dir .. "/" .. name .. ".log" }
end

local uid = h.uid

describe("Dapr end to end (real daprd, real Kafka in KRaft mode, SASL SCRAM over TLS)", function()
  local dir, kafka_dir, daprd_bin, db
  local api, consumer, api_dapr, consumer_dapr

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
    local ready = h.eventually(function()
      return h.request("GET", "/v1.0/healthz", { port = http_port, timeout = 1 }) == 204
    end, 90)
    assert(ready, app_id .. "'s daprd did not become ready:\n" .. read(sidecar.log))
    return host, sidecar
  end

  lazy_setup(function()
    local out, ok = h.sh("scripts/install-daprd")
    assert(ok, "scripts/install-daprd failed (this spec needs daprd):\n" .. out)
    daprd_bin = out:match("([^\n]+)$")

    dir = h.sh("mktemp -d /tmp/dapr-kafka-e2e.XXXXXX")
    kafka_dir = dir .. "/kafka"
    os.execute("mkdir -p " .. h.sh_quote(kafka_dir))
    out, ok = h.sh("scripts/kafka start " .. h.sh_quote(kafka_dir) .. " " .. KAFKA_USER .. " " .. KAFKA_PASSWORD)
    assert(ok, "scripts/kafka start failed:\n" .. out)
    local port = assert(out:match("(%d+) %d+%s*$"), out)
    for _, topic in ipairs(TOPICS) do
      out, ok = h.sh("scripts/kafka topic " .. h.sh_quote(kafka_dir) .. " " .. topic .. " 3")
      assert(ok, "creating " .. topic .. " failed:\n" .. out)
    end

    -- The cluster's components as committed, plus the trust of this broker's certificate.
    local resources = dir .. "/resources"
    os.execute("mkdir -p " .. resources)
    local ca = read(kafka_dir .. "/ca.pem")
    local ca_item = "    - name: caCert\n      value: |\n        " ..
      ca:gsub("\n$", ""):gsub("\n", "\n        ") .. "\n"
    for _, name in ipairs { "pubsub.yaml", "pubsub-broadcast.yaml" } do
      local text = read("dapr/cluster/" .. name)
      local n
      text, n = text:gsub("\nauth:", "\n" .. ca_item .. "auth:", 1)
      assert(n == 1, "no auth: section in dapr/cluster/" .. name)
      write(resources .. "/" .. name, text)
    end
    write(resources .. "/resiliency.yaml", read("dapr/cluster/resiliency.yaml"))
    -- The Kubernetes Secret "redpanda", as a local file store under the same name.
    write(dir .. "/secrets.json", json.encode {
      redpanda = { brokers = "127.0.0.1:" .. port, username = KAFKA_USER, password = KAFKA_PASSWORD },
    })
    write(resources .. "/secretstore.yaml", table.concat({
      "apiVersion: dapr.io/v1alpha1", "kind: Component", "metadata:", "  name: kubernetes", "spec:",
      "  type: secretstores.local.file", "  version: v1", "  metadata:",
      "    - name: secretsFile", "      value: " .. dir .. "/secrets.json",
      "    - name: multiValued", '      value: "true"', "" }, "\n"))

    db = h.new_database()
    out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin) .. " migrate services/api")
    assert(ok, "migrate failed: " .. out)
    consumer, consumer_dapr = app_with_sidecar("dapr-consumer", "spec/fixtures/dapr-consumer", resources)
    api, api_dapr = app_with_sidecar("api", "services/api", resources)

    -- The broadcast group starts at the newest offset (a new pod does not replay
    -- history), so it sees only what is published after the group has joined and
    -- been given its partitions, which takes a few seconds after daprd is ready.
    -- Wait for that: publish until one event comes through the broadcast group.
    local warm_user = uid("kafka-warmup")
    local joined = h.eventually(function()
      local _, task = api:request("POST", "/api/tasks", { token = h.token(warm_user), body = { title = "warm-up" } })
      return task and h.eventually(function()
        local status, body = consumer:request("GET", "/seen")
        if status ~= 200 then return nil end
        for _, row in ipairs(body.seen) do
          if row.grp == "broadcast" and row.subject == task.id then return true end
        end
      end, 3)
    end, 90)
    assert(joined, "the broadcast group never received an event:\n" .. read(consumer_dapr.log))
  end)

  lazy_teardown(function()
    if api then api:stop() end
    if consumer then consumer:stop() end
    for _, p in ipairs { api_dapr or {}, consumer_dapr or {} } do
      if p.pid then os.execute("kill " .. p.pid .. " 2>/dev/null") end
    end
    if kafka_dir then h.sh("scripts/kafka stop " .. h.sh_quote(kafka_dir)) end
    h.sleep(0.5)
    daprd.remove_dir(dir)
  end)

  local function seen(grp, subject)
    local status, body = consumer:request("GET", "/seen")
    if status ~= 200 then return {} end
    local rows = {}
    for _, row in ipairs(body.seen) do
      if row.grp == grp and row.subject == subject then rows[#rows + 1] = row end
    end
    return rows
  end

  it("delivers a task change to the work group and to the per-pod broadcast group, once each", function()
    local status, task = api:request("POST", "/api/tasks",
      { token = h.token(uid("kafka-erin")), body = { title = "Water the plants" } })
    assert.are.equal(201, status)
    local work = h.eventually(function() return seen("dapr-consumer", task.id)[1] end, 60)
    assert.is_truthy(work, "task-events never reached the consumer over Kafka.\napi daprd:\n" ..
      read(api_dapr.log) .. "\nconsumer daprd:\n" .. read(consumer_dapr.log))
    assert.are.equal("task.created", work.type)
    local b = h.eventually(function() return seen("broadcast", task.id)[1] end, 60)
    assert.is_truthy(b, "task-updates never reached the broadcast consumer:\n" .. read(consumer_dapr.log))
    h.sleep(2)
    assert.are.equal(1, #seen("dapr-consumer", task.id), "delivered more than once to the work group")
    assert.are.equal(1, #seen("broadcast", task.id), "delivered more than once to the broadcast group")
  end)

  it("uses the app-id as the work group and the pod name as the broadcast group, on three topics", function()
    local groups = h.eventually(function()
      local out = h.sh("scripts/kafka groups " .. h.sh_quote(kafka_dir))
      return out:find("dapr-consumer-0", 1, true) and out
    end, 30)
    assert.is_truthy(groups, "no per-pod group on the broker")
    local names = {}
    for line in groups:gmatch("[^\n]+") do names[line] = true end
    assert.is_true(names["dapr-consumer"], "no work group named after the app-id:\n" .. groups)
    assert.is_true(names["dapr-consumer-0"], "no broadcast group named after the pod:\n" .. groups)
    local topics = h.sh("scripts/kafka topics " .. h.sh_quote(kafka_dir))
    for _, t in ipairs(TOPICS) do
      assert.matches("Topic: " .. t:gsub("%-", "%%-") .. "%s+TopicId:[^\n]+PartitionCount: 3", topics)
    end
  end)
end)

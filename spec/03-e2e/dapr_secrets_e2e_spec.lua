-- The database URL through the Dapr secrets API, with the REAL sidecar: the api
-- bundle started with BUS=dapr, no DATABASE_URL and DATABASE_URL_SECRET naming a secret
-- of the local file secret store (dapr/local/secretstore.yaml, `multiValued` so that a
-- secret has several keys as a Kubernetes Secret does; the key named as the chart does)
-- serves a task round trip; a secret with one key needs no key named. A missing secret,
-- a missing key, an unknown store, a wrong token and a sidecar that never comes up each
-- stop start-up with one line that names what is wrong (never the value), the last
-- after a bounded wait. And the start-up refusals that need no sidecar: the secret
-- without BUS=dapr, both DATABASE_URL and the secret, BUS=dapr without API_CURSOR_SECRET.
local h = require "spec.helpers"
local d = require "spec.support.daprd"
local crypto = require "crypto"
local socket = require "socket"

local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))
local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local CURSOR_SECRET = "cursor-" .. crypto.hex(crypto.random_bytes(8))

-- A host expected to refuse to start: its exit code and log.
local function refused(env, timeout)
  local host = h.start { no_database = true, wait = false, bundles = { "services/api" }, env = env }
  local code = h.eventually(function() return host:exit_code() end, timeout or 15)
  local log = host:log()
  if not code then host:kill() end
  assert.is_nil(host:sanitizer_report()) -- ASan builds: the refusal path leaks nothing either
  return code, log
end

describe("the database URL from the Dapr secrets API (real daprd)", function()
  local dir, redis, sidecar, host, db_url

  lazy_setup(function()
    local bin = d.binary()
    local port
    dir, redis, port = d.redis()
    db_url = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db_url) .. " " .. h.sh_quote(h.host_bin) ..
      " migrate services/api")
    assert(ok, "migrate failed: " .. out)
    d.write(dir .. "/secrets.json", require("json").encode {
      ["todo-database"] = { url = db_url, user = "todo" }, single = { connection = db_url } })
    local resources = d.resources(dir, port, { "pubsub.yaml", "secretstore.yaml" }, function(name, text)
      if name == "secretstore.yaml" then
        return (text:gsub("%.data/dapr/secrets%.json", dir .. "/secrets.json")) ..
          '    - name: multiValued\n      value: "true"\n'
      end
      return text
    end)
    local app_port, dapr_port = h.free_port(), h.free_port()
    -- The host waits for its sidecar (GET /v1.0/healthz/outbound) before it listens;
    -- daprd's /v1.0/healthz waits for the app: so the host starts first.
    host = h.start { port = app_port, no_database = true, wait = false, bundles = { "services/api" },
      env = { BUS = "dapr", DATABASE_URL_SECRET = "todo-database", DATABASE_URL_SECRET_KEY = "url",
        DAPR_HTTP_PORT = dapr_port,
        DAPR_API_TOKEN = API_TOKEN, APP_API_TOKEN = APP_TOKEN, API_CURSOR_SECRET = CURSOR_SECRET } }
    sidecar = d.sidecar(dir, { bin = bin, app_id = "api", app_port = app_port, http_port = dapr_port,
      resources = resources, env = { APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN } })
    assert(host:wait_ready(30), "host did not start:\n" .. host:log())
  end)

  lazy_teardown(function()
    if host then host:stop() end
    d.stop(sidecar)
    d.stop(redis)
    h.sleep(0.5)
    d.remove_dir(dir)
  end)

  it("serves a task round trip with the URL it read from the secret store", function()
    local token = h.token("secret-user-" .. os.time() .. "-" .. math.random(1, 1e9))
    local status, task = host:request("POST", "/api/tasks", { token = token, body = { title = "from a secret" } })
    assert.are.equal(201, status, host:log())
    local got
    status, got = host:request("GET", "/api/tasks/" .. task.id, { token = token })
    assert.are.equal(200, status)
    assert.are.equal("from a secret", got.title)
    assert.are.equal(200, (host:request("GET", "/readyz")))
    assert.matches("database URL read from secret todo%-database", host:log())
    assert.is_nil(host:log():find(db_url, 1, true), "the URL is in the log")
  end)

  local function against_sidecar(extra)
    local env = { BUS = "dapr", DAPR_HTTP_PORT = sidecar.http_port, DAPR_API_TOKEN = API_TOKEN,
      API_CURSOR_SECRET = CURSOR_SECRET }
    for k, v in pairs(extra) do env[k] = v end
    return refused(env)
  end

  it("stops with a line naming the secret, the store and the status when the secret is missing", function()
    local code, log = against_sidecar { DATABASE_URL_SECRET = "no-such-secret" }
    assert.are.equal(2, code, log)
    assert.matches("secret 'no%-such%-secret' of store 'secretstore': HTTP 500 ERR_SECRET_GET", log)
  end)

  it("takes a secret's only key when none is named", function()
    local env = { BUS = "dapr", DAPR_HTTP_PORT = sidecar.http_port, DAPR_API_TOKEN = API_TOKEN,
      API_CURSOR_SECRET = CURSOR_SECRET, DATABASE_URL_SECRET = "single", DAPR_RELAY = "off" }
    local other = h.start { no_database = true, bundles = { "services/api" }, env = env }
    -- ready: its pool reached the database at the URL it read
    local ready = h.eventually(function() return other:request("GET", "/readyz") == 200 end, 10)
    other:stop()
    assert.is_truthy(ready, other:log())
  end)

  it("names the keys it found, not their values, when the key asked for is not there", function()
    local code, log = against_sidecar { DATABASE_URL_SECRET = "todo-database", DATABASE_URL_SECRET_KEY = "password" }
    assert.are.equal(2, code, log)
    assert.matches("secret 'todo%-database' of store 'secretstore' has no key 'password' %(its keys: url, user%)", log)
    assert.is_nil(log:find(db_url, 1, true), "the URL is in the log")
    -- several keys, none named: none named like the secret either
    code, log = against_sidecar { DATABASE_URL_SECRET = "todo-database" }
    assert.are.equal(2, code, log)
    assert.matches("has no key 'todo%-database' %(its keys: url, user%)", log)
  end)

  it("says which store is unknown", function()
    local code, log = against_sidecar { DATABASE_URL_SECRET = "todo-database", DAPR_SECRETSTORE = "vault" }
    assert.are.equal(2, code, log)
    assert.matches("secret 'todo%-database' of store 'vault': HTTP 401 ERR_SECRET_STORE_NOT_FOUND", log)
  end)

  it("refuses a wrong dapr-api-token with the sidecar's status", function()
    local code, log = against_sidecar { DATABASE_URL_SECRET = "todo-database", DAPR_API_TOKEN = "wrong" }
    assert.are.equal(2, code, log)
    assert.matches("secret 'todo%-database' of store 'secretstore': HTTP 401", log)
  end)
end)

describe("start-up refusals about secrets (no sidecar)", function()
  it("waits a bounded time for a sidecar that never comes up, then says so", function()
    local started = socket.gettime()
    local code, log = refused({ BUS = "dapr", DATABASE_URL_SECRET = "todo-database", DAPR_HTTP_PORT = h.free_port(),
      DAPR_WAIT_SECONDS = "2", API_CURSOR_SECRET = CURSOR_SECRET }, 20)
    local took = socket.gettime() - started
    assert.are.equal(2, code, log)
    assert.matches("DATABASE_URL_SECRET=todo%-database: the Dapr sidecar at http://127%.0%.0%.1:%d+ was not ready " ..
      "%(GET /v1%.0/healthz/outbound%) within 2 s", log)
    assert.is_true(took >= 2 and took < 10, "took " .. took .. " s")
  end)

  it("refuses DATABASE_URL_SECRET without BUS=dapr", function()
    local code, log = refused { DATABASE_URL_SECRET = "todo-database" }
    assert.are.equal(2, code, log)
    assert.matches("DATABASE_URL_SECRET=todo%-database needs BUS=dapr", log)
  end)

  it("refuses DATABASE_URL and DATABASE_URL_SECRET together", function()
    local code, log = refused { BUS = "dapr", DATABASE_URL = "postgresql://127.0.0.1:1/x",
      DATABASE_URL_SECRET = "todo-database", API_CURSOR_SECRET = CURSOR_SECRET }
    assert.are.equal(2, code, log)
    assert.matches("DATABASE_URL and DATABASE_URL_SECRET are both set", log)
  end)

  it("refuses BUS=dapr without API_CURSOR_SECRET (list cursors would be signed with the public default)", function()
    local code, log = refused { BUS = "dapr", AUTH_DEV_SECRET = false }
    assert.are.equal(2, code, log)
    assert.matches("BUS=dapr needs API_CURSOR_SECRET", log)
  end)
end)

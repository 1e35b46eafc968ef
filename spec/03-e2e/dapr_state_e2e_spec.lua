-- Dapr beyond pub/sub, with the REAL sidecar: the state API (lua/state over the Redis
-- state store of dapr/local/statestore.yaml, the same contract the PostgreSQL backend
-- passes in spec/02-integration/state_spec.lua), the secrets API (lua/secrets over the
-- local file secret store) and a cron input binding (lua/bus/cron.lua), through the
-- state-probe fixture beside its own daprd. Tokens on in both directions.
local h = require "spec.helpers"
local d = require "spec.support.daprd"
local contract = require "spec.support.state_contract"
local crypto = require "crypto"

local APP_TOKEN = "app-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-" .. crypto.hex(crypto.random_bytes(8))
local SIGNING_KEY = "whsec-" .. crypto.hex(crypto.random_bytes(16))

describe("Dapr state, secrets and cron binding (real daprd)", function()
  local dir, redis, host, sidecar

  lazy_setup(function()
    local bin = d.binary()
    local port
    dir, redis, port = d.redis()
    d.write(dir .. "/secrets.json", '{"webhook-signing-key": "' .. SIGNING_KEY .. '"}')
    local resources = d.resources(dir, port, { "statestore.yaml", "secretstore.yaml", "reminder-tick.yaml" },
      function(name, text)
        if name == "secretstore.yaml" then return (text:gsub("%.data/dapr/secrets%.json", dir .. "/secrets.json")) end
        if name == "reminder-tick.yaml" then
          -- the committed binding, renamed for the fixture, ticking every second
          return (text:gsub("name: reminder%-tick", "name: probe-tick"):gsub("@every 1m", "@every 1s")
            :gsub("%- notification", "- state-probe"))
        end
        return text
      end)
    local app_port, dapr_port = h.free_port(), h.free_port()
    -- the state-probe fixture needs no database with BUS=dapr
    host = h.start { port = app_port, no_database = true, bundles = { "spec/fixtures/state-probe" },
      env = { BUS = "dapr", APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN, DAPR_HTTP_PORT = dapr_port,
        RATE_LIMIT_PER_SECOND = "5", WORKERS = 2 } }
    sidecar = d.sidecar(dir, { bin = bin, app_id = "state-probe", app_port = app_port, http_port = dapr_port,
      resources = resources, env = { APP_API_TOKEN = APP_TOKEN, DAPR_API_TOKEN = API_TOKEN } })
  end)

  lazy_teardown(function()
    if host then host:stop() end
    d.stop(sidecar)
    d.stop(redis)
    h.sleep(0.5)
    d.remove_dir(dir)
  end)

  describe("state API", function()
    contract({ it = it, assert = assert }, function() return host end, "dapr")
  end)

  it("reads a secret through the secrets API, and says which one is missing", function()
    local status, res = host:request("GET", "/secret/webhook-signing-key")
    assert.are.equal(200, status)
    assert.are.equal(SIGNING_KEY, res.value, require("json").encode(res))
    status, res = host:request("GET", "/secret/no-such-secret")
    assert.are.equal(200, status)
    assert.is_nil(res.value)
    assert.matches("no%-such%-secret", res.error)
    assert.is_nil(res.error:find(SIGNING_KEY, 1, true))
  end)

  it("counts the per-user rate limit in the Redis state store: 5 a second, the rest 429", function()
    local socket = require "socket"
    local token = h.token("limited-" .. os.time() .. "-" .. math.random(1, 1e9))
    local raws = {}
    for i = 1, 12 do
      raws[i] = "GET /limited HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " ..
        token .. "\r\n\r\n"
    end
    local now = socket.gettime()
    h.sleep(math.ceil(now) - now + 0.02) -- the burst in one window
    local by = {}
    for _, r in ipairs(h.send_together(host.port, raws)) do by[r.status] = (by[r.status] or 0) + 1 end
    assert.are.same({ [200] = 5, [429] = 7 }, by)
  end)

  it("delivers the cron binding's ticks to the app", function()
    local _, first = host:request("GET", "/ticks")
    local later = h.eventually(function()
      local _, now = host:request("GET", "/ticks")
      return now.ticks >= first.ticks + 2 and now
    end, 10)
    assert.is_truthy(later, "no ticks arrived:\n" .. d.read(sidecar.log))
  end)
end)

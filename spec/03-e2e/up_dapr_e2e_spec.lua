-- `make up-dapr` (scripts/up-dapr) end to end: every bundle of services/ as its own
-- todo-host process beside its own REAL daprd, over Redis Streams (dapr/local/), one
-- PostgreSQL, as in the cluster. A change made through the REST API of the api service
-- must reach every other service through the sidecars: the history (the api's own
-- "history" group), the recurring-task service (the next occurrence appears), the
-- websocket service (a connected client gets the event), the notification service (a
-- reminder fires and reaches the client); and a change made by the chat service's tools
-- (its own outbox and sidecar) reaches them as well.
local h = require "spec.helpers"
local d = require "spec.support.daprd"
local wsc = require "spec.support.wsclient"
local json = require "json"
local tz = require "tz"

local DAY = 86400
local uid = h.uid

describe("make up-dapr (every service beside its own daprd)", function()
  local dir, up, svc = nil, nil, {}

  lazy_setup(function()
    d.binary() -- build or find daprd first, so its build time is not counted as start-up
    dir = h.sh("mktemp -d /tmp/up-dapr-spec.XXXXXX")
    local db = h.new_database()
    up = d.spawn(dir, "up-dapr", { DATABASE_URL = db, AUTH_DEV_SECRET = h.dev_secret, UP_DAPR_DIR = dir .. "/run",
      TODO_HOST = h.host_bin }, "scripts/up-dapr")
    local ready = h.eventually(function() return io.open(dir .. "/run/ready") ~= nil end, 150)
    assert(ready, "scripts/up-dapr did not get ready:\n" .. d.read(up.log))
    for line in d.read(dir .. "/run/services"):gmatch("[^\n]+") do
      local name, app, dapr = line:match("^(%S+) (%d+) (%d+)$")
      svc[name] = { port = tonumber(app), dapr_port = tonumber(dapr), log = dir .. "/run/" .. name .. ".log" }
    end
    for _, name in ipairs { "api", "recurring-task", "chat", "websocket", "notification" } do
      assert(svc[name], name .. " is not among the services up-dapr started")
    end
  end)

  lazy_teardown(function()
    d.stop(up) -- its trap stops every host, daprd and Redis it started
    if up then h.eventually(function() return os.execute("kill -0 " .. up.pid .. " 2>/dev/null") ~= true end, 15) end
    d.remove_dir(dir)
  end)

  local function api(method, path, token, body)
    return h.request(method, path, { port = svc.api.port, token = token, body = body })
  end

  local function logs()
    local out = {}
    for name, s in pairs(svc) do
      out[#out + 1] = "== " .. name .. ":\n" .. d.read(s.log):sub(-1500) ..
        "\n== " .. name .. " daprd:\n" .. d.read(dir .. "/run/" .. name .. "-daprd.log"):sub(-1500)
    end
    return table.concat(out, "\n")
  end

  local function history_kinds(id, token, n)
    return h.eventually(function()
      local s, b = api("GET", "/api/tasks/" .. id .. "/history", token)
      if s ~= 200 or #b.items < n then return nil end
      local kinds = {}
      for _, it in ipairs(b.items) do kinds[#kinds + 1] = it.kind end
      table.sort(kinds) -- two changes within a millisecond may list either way
      return kinds
    end, 30)
  end

  it("a REST change reaches the history, the recurring-task service and a WebSocket client", function()
    local user = uid("topo")
    local token = h.token(user)
    local client = wsc.open { port = svc.websocket.port, token = token, seconds = 60,
      send = { { type = "resume", after = 0 } } }
    -- resume right after hello, as the protocol asks (spec/contracts/websocket.md)
    local resumed = client:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end, 15)
    assert.is_truthy(resumed, "no hello from the websocket service: " .. client:stderr())
    local due = (os.time() // DAY + 1) * DAY + 9 * 3600
    local status, task = api("POST", "/api/tasks", token,
      { title = "Water the plants", due_at = tz.format(due, "UTC"), recurrence = { rule = "FREQ=DAILY" } })
    assert.are.equal(201, status, json.encode(task))
    status = api("POST", "/api/tasks/" .. task.id .. "/complete", token)
    assert.are.equal(200, status)

    -- history: the api's "history" group, delivered by the api's sidecar
    local kinds = history_kinds(task.id, token, 2)
    assert.is_truthy(kinds, "the history never saw the changes\n" .. logs())
    assert.are.same({ "completed", "created" }, kinds) -- sorted

    -- recurrence: the recurring-task service (its own process and sidecar) spawned the next one
    local nxt = h.eventually(function()
      local s, b = api("GET", "/api/tasks?status=pending", token)
      if s ~= 200 then return nil end
      for _, t in ipairs(b.items) do if t.spawned_from == task.id then return t end end
    end, 30)
    assert.is_truthy(nxt, "no next occurrence from the recurring-task service\n" .. logs())
    assert.are.equal(due + DAY, (tz.parse_rfc3339(nxt.due_at)))

    -- websocket: the broadcast group of the websocket service's sidecar
    local got = client:wait(function(m)
      local seen = {}
      for _, e in ipairs(wsc.of_type(m, "task.")) do seen[e.type .. ":" .. e.task.id] = true end
      return seen["task.created:" .. task.id] and seen["task.completed:" .. task.id]
        and seen["task.created:" .. nxt.id]
    end, 30)
    assert.is_truthy(got, "the WebSocket client missed events: " .. json.encode(client:messages()) .. "\n" .. logs())
    client:kill()

    -- and it went through the broker: Redis Streams carry the topics, with the
    -- consumer group of each service's app-id (the work groups) on task-events
    local redis = "redis-cli -p " .. d.read(dir .. "/run/redis-port"):match("%d+") .. " "
    assert.is_true(tonumber((h.sh(redis .. "XLEN task-events"))) >= 3)
    local groups = h.sh(redis .. "XINFO GROUPS task-events")
    for _, g in ipairs { "api", "recurring-task" } do
      assert.is_truthy(groups:find("name\n" .. g .. "\n", 1, true), groups)
    end
    assert.is_true(tonumber((h.sh(redis .. "XLEN task-updates"))) >= 3)
  end)

  it("a task with a reminder: the notification service fires it, the WebSocket client gets it", function()
    local user = uid("remind")
    local token = h.token(user)
    local client = wsc.open { port = svc.websocket.port, token = token, seconds = 60,
      send = { { type = "resume", after = 0 } } }
    assert.is_truthy(client:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end, 15), client:stderr())
    local at = os.time() + 3
    local status, task = api("POST", "/api/tasks", token, { title = "Call mum",
      due_at = tz.format(at + 600, "UTC"), reminders = { { at = tz.format(at, "UTC") } } })
    assert.are.equal(201, status, json.encode(task))
    -- task-events -> the notification service's sidecar -> its schedule; it fires, and
    -- reminder.due goes out on `reminders` -> the websocket service's broadcast group
    local got = client:wait(function(m)
      for _, e in ipairs(wsc.of_type(m, "reminder.due")) do if e.reminder.task_id == task.id then return true end end
    end, 30)
    assert.is_truthy(got, "no reminder.due reached the WebSocket client: " .. json.encode(client:messages()) ..
      "\n" .. logs())
    local s, body = h.request("GET", "/api/notifications", { port = svc.notification.port, token = token })
    assert.are.equal(200, s)
    assert.are.equal(1, #body.items, json.encode(body))
    client:kill()
    -- the reminder-tick cron binding is loaded by the notification service's sidecar
    -- only (scoped); its ticks, once a minute here, are shown at one a second by
    -- dapr_state_e2e_spec.lua
    local loaded = "successful init for input binding (reminder-tick"
    assert.is_truthy(d.read(dir .. "/run/notification-daprd.log"):find(loaded, 1, true))
    assert.is_nil(d.read(dir .. "/run/api-daprd.log"):find(loaded, 1, true))
  end)

  it("a change made by the chat service's tools reaches the history and a WebSocket client", function()
    local user = uid("chatty")
    local token = h.token(user)
    local client = wsc.open { port = svc.websocket.port, token = token, seconds = 60,
      send = { { type = "resume", after = 0 } } }
    assert.is_truthy(client:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end, 15), client:stderr())
    local status, body = h.request("POST", "/api/chat", { port = svc.chat.port, token = token,
      body = { message = "add buy oat milk" } })
    assert.are.equal(200, status, json.encode(body))
    local created = h.eventually(function()
      local s, b = api("GET", "/api/tasks", token)
      return s == 200 and b.items[1]
    end, 10)
    assert.is_truthy(created, "the chat created no task: " .. json.encode(body))
    assert.matches("oat milk", created.title:lower())
    assert.are.same({ "created" }, history_kinds(created.id, token, 1), logs())
    local got = client:wait(function(m)
      for _, e in ipairs(wsc.of_type(m, "task.created")) do if e.task.id == created.id then return true end end
    end, 30)
    assert.is_truthy(got, "the WebSocket client missed the chat's task: " .. json.encode(client:messages()))
    client:kill()
  end)
end)

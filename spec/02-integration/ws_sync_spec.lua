-- services/websocket (issue 14) with real clients (python3-websockets) against the REST
-- API on a real PostgreSQL: two connections of one user see each other's changes;
-- another user sees nothing; resume after a disconnect replays exactly the missed
-- events in order; resume across a SIGKILL of the websocket process loses nothing;
-- a resume outside the log answers resync; malformed messages get an `error`; every
-- message the server sent validates against spec/contracts/websocket/.
local h = require "spec.helpers"
local json = require "json"
local wsc = require "spec.support.wsclient"

local function validate(messages)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(json.encode(json.array(messages)))
  f:close()
  local out, ok = h.sh("/usr/bin/python3 spec/contracts/websocket/validate.py " .. path)
  os.remove(path)
  assert(ok, "messages do not match the schemas:\n" .. out)
end

local function tables(messages)
  local out = {}
  for _, m in ipairs(messages) do if type(m) == "table" then out[#out + 1] = m end end
  return out
end

local function ids_of(messages)
  local out = {}
  for _, m in ipairs(messages) do
    if m.event_id and m.type ~= "hello" and m.type ~= "resumed" then out[#out + 1] = m.event_id end
  end
  return out
end

describe("websocket sync", function()
  local api, wshost
  setup(function()
    api = h.start { bundles = { "services/api", "services/websocket" } }
    -- the websocket bundle also in its own process on the same database (the restart case)
    wshost = h.start { bundles = { "services/websocket" }, database_url = api.database_url, skip_migrate = true }
  end)
  teardown(function()
    if wshost then wshost:stop() end
    if api then api:stop() end
  end)

  local function create(user, title)
    local status, body = api:request("POST", "/api/tasks", { token = h.token(user), body = { title = title } })
    assert.are.equal(201, status)
    return body
  end

  it("shows one device's REST change on the user's other devices, and nothing to another user", function()
    local a1 = wsc.open { port = api.port, token = h.token("sync-alice"), seconds = 30 }
    local a2 = wsc.open { port = api.port, token = h.token("sync-alice"), seconds = 30, send = { { type = "ping" } } }
    local b = wsc.open { port = api.port, token = h.token("sync-bob"), seconds = 30 }
    for _, c in ipairs { a1, a2, b } do assert.is_truthy(c:wait_count(1), c:stderr()) end
    assert.are.same({ type = "hello", user = "sync-alice", event_id = 0, resume_window_seconds = 604800 },
      a1:messages()[1])
    local task = create("sync-alice", "Buy milk")
    local status, done = api:request("POST", "/api/tasks/" .. task.id .. "/complete", { token = h.token("sync-alice") })
    assert.are.equal(200, status)
    for _, c in ipairs { a1, a2 } do
      local got = c:wait(function(m) return #wsc.of_type(m, "task.") >= 2 end)
      assert.is_truthy(got, json.encode(c:messages()))
      local ev = wsc.of_type(got, "task.")
      assert.are.equal("task.created", ev[1].type)
      assert.are.same(task, ev[1].task)
      assert.are.same({ 1, 2 }, { ev[1].event_id, ev[2].event_id })
      assert.are.equal("task.completed", ev[2].type)
      assert.are.same(done, ev[2].task)
      assert.are.equal(2, ev[2].version)
      validate(tables(got))
    end
    -- bob's own change reaches bob; alice's never did
    create("sync-bob", "Bob's")
    local got = b:wait(function(m) return #wsc.of_type(m, "task.") >= 1 end)
    assert.is_truthy(got)
    local ev = wsc.of_type(got, "task.")
    assert.are.equal(1, #ev)
    assert.are.equal("Bob's", ev[1].task.title)
    assert.are.equal(1, ev[1].event_id)
  end)

  it("replays exactly the missed events in order after a disconnect, then goes on live", function()
    local user = "resume-carol"
    local first = wsc.open { port = api.port, token = h.token(user), seconds = 20 }
    assert.is_truthy(first:wait_count(1))
    local t = create(user, "one")
    assert.is_truthy(first:wait(function(m) return #wsc.of_type(m, "task.") == 1 end))
    local seen = wsc.of_type(first:messages(), "task.")[1].event_id
    first:kill()
    -- missed while away: an update, a completion, a new task
    local patched = api:request("PATCH", "/api/tasks/" .. t.id, { token = h.token(user), body = { title = "one!" } })
    assert.are.equal(200, patched)
    assert.are.equal(200, (api:request("POST", "/api/tasks/" .. t.id .. "/complete", { token = h.token(user) })))
    create(user, "two")
    local again = wsc.open { port = api.port, token = h.token(user), seconds = 20,
      send = { { type = "resume", after = seen } } }
    local got = again:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end)
    assert.is_truthy(got, json.encode(again:messages()))
    assert.are.same({ "hello", "task.updated", "task.completed", "task.created", "resumed" },
      (function() local o = {} for i, m in ipairs(got) do o[i] = m.type end return o end)())
    assert.are.same({ seen + 1, seen + 2, seen + 3 }, ids_of(got))
    assert.are.equal(seen + 3, got[1].event_id) -- hello: the newest id
    -- live after the replay, once
    create(user, "three")
    got = again:wait(function(m) return #wsc.of_type(m, "task.") == 4 end)
    assert.is_truthy(got)
    h.sleep(0.3)
    assert.are.same({ seen + 1, seen + 2, seen + 3, seen + 4 }, ids_of(again:messages()))
    validate(tables(again:messages()))
  end)

  it("answers resync to a resume from an id it does not know", function()
    local c = wsc.open { port = api.port, token = h.token("resync-dan"), seconds = 20,
      send = { { type = "resume", after = 99 } } }
    local got = c:wait(function(m) return #wsc.of_type(m, "resync") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    assert.are.equal(0, wsc.of_type(got, "resync")[1].event_id)
    validate(tables(got))
  end)

  it("answers malformed messages with an error and keeps serving", function()
    local c = wsc.open { port = api.port, token = h.token("bad-erin"), seconds = 20,
      send = { "{not json", "[1,2]", json.encode { type = "subscribe", user = "sync-alice" },
               json.encode { type = "resume", after = -1 }, json.encode { type = "ping", id = 7 } } }
    local got = c:wait(function(m) return #wsc.of_type(m, "pong") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    local errs = wsc.of_type(got, "error")
    assert.are.same({ "bad_json", "bad_json", "bad_message", "bad_message" },
      { errs[1].code, errs[2].code, errs[3].code, errs[4].code })
    assert.are.equal(7, wsc.of_type(got, "pong")[1].id)
    validate(tables(got))
    assert.are.equal(200, (api:request("GET", "/healthz")))
  end)

  it("loses nothing across a SIGKILL of the websocket process", function()
    local user = "kill-fay"
    local c = wsc.open { port = wshost.port, token = h.token(user), seconds = 20 }
    assert.is_truthy(c:wait_count(1))
    create(user, "before")
    assert.is_truthy(c:wait(function(m) return #wsc.of_type(m, "task.") == 1 end), json.encode(c:messages()))
    local seen = wsc.of_type(c:messages(), "task.")[1].event_id
    wshost:kill()
    for i = 1, 5 do create(user, "while down " .. i) end
    wshost:spawn()
    assert.is_truthy(wshost:wait_ready(15), wshost:log())
    local again = wsc.open { port = wshost.port, token = h.token(user), seconds = 20,
      send = { { type = "resume", after = seen } } }
    local got = again:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end)
    assert.is_truthy(got, json.encode(again:messages()))
    assert.are.same({ seen + 1, seen + 2, seen + 3, seen + 4, seen + 5 }, ids_of(got))
    for i, m in ipairs(wsc.of_type(got, "task.")) do assert.are.equal("while down " .. i, m.task.title) end
  end)
end)

describe("websocket sync: reminders and reload", function()
  local host
  setup(function() host = h.start { bundles = { "services/api", "services/websocket" } } end)
  teardown(function() if host then host:stop() end end)

  it("forwards reminder.due events in the user's sequence, and replays them", function()
    local user = "remind-hal"
    local c = wsc.open { port = host.port, token = h.token(user), seconds = 20, send = { { type = "ping" } } }
    assert.is_truthy(c:wait_count(2))
    local status, task = host:request("POST", "/api/tasks", { token = h.token(user), body = { title = "Call mum" } })
    assert.are.equal(201, status)
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin) ..
      " script spec/support/publish_reminder.lua " .. user .. " " .. task.id .. " 'Call mum'")
    assert(ok, out)
    local got = c:wait(function(m) return #wsc.of_type(m, "reminder.due") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    local r = wsc.of_type(got, "reminder.due")[1]
    assert.are.equal(2, r.event_id) -- after the task's creation (1)
    assert.are.same({ task_id = task.id, title = "Call mum", due_at = "2026-12-05T09:00:00Z",
                      remind_at = "2026-12-05T08:45:00Z" }, r.reminder)
    validate(tables(got))
    local again = wsc.open { port = host.port, token = h.token(user), seconds = 20,
      send = { { type = "resume", after = 1 } } }
    got = again:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end)
    assert.is_truthy(got)
    assert.are.same({ 2 }, ids_of(got))
    assert.are.equal("reminder.due", got[2].type)
  end)

  it("keeps open connections working across a SIGHUP reload", function()
    local user = "reload-ivy"
    local c = wsc.open { port = host.port, token = h.token(user), seconds = 20,
      send = { { type = "ping", id = 1 } } }
    assert.is_truthy(c:wait(function(m) return #wsc.of_type(m, "pong") == 1 end))
    os.execute("kill -HUP " .. host.pid)
    assert.is_truthy(h.eventually(function() return host:log():find("reloaded", 1, true) end, 10), host:log())
    local status = host:request("POST", "/api/tasks", { token = h.token(user), body = { title = "after reload" } })
    assert.are.equal(201, status)
    local got = c:wait(function(m) return #wsc.of_type(m, "task.created") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    assert.are.equal("after reload", wsc.of_type(got, "task.created")[1].task.title)
  end)
end)

describe("websocket sync: the hold after hello", function()
  it("sends an event committed between hello and resume once, in the replay", function()
    local host = h.start { bundles = { "services/api", "services/websocket" }, env = { WS_HOLD_SECONDS = 5 } }
    finally(function() host:stop() end)
    local user = "hold-jo"
    local c = wsc.open { port = host.port, token = h.token(user), seconds = 20, gap = 1.5,
      send = { { type = "resume", after = 0 } } }
    assert.is_truthy(c:wait_count(1))
    local status = host:request("POST", "/api/tasks", { token = h.token(user), body = { title = "between" } })
    assert.are.equal(201, status)
    local got = c:wait(function(m) return #wsc.of_type(m, "resumed") == 1 end)
    assert.is_truthy(got, json.encode(c:messages()))
    h.sleep(0.5)
    local types = {}
    for i, m in ipairs(c:messages()) do types[i] = m.type end
    assert.are.same({ "hello", "task.created", "resumed" }, types)
  end)
end)

describe("websocket sync with two workers", function()
  it("delivers on every connection whichever worker holds it", function()
    local host = h.start { bundles = { "services/api", "services/websocket" }, workers = 2 }
    finally(function() host:stop() end)
    local clients = {}
    for i = 1, 6 do clients[i] = wsc.open { port = host.port, token = h.token("two-gus"), seconds = 20 } end
    for _, c in ipairs(clients) do assert.is_truthy(c:wait_count(1), c:stderr()) end
    h.sleep(1.2) -- past the hold after hello
    local status = host:request("POST", "/api/tasks", { token = h.token("two-gus"), body = { title = "x" } })
    assert.are.equal(201, status)
    for _, c in ipairs(clients) do
      assert.is_truthy(c:wait(function(m) return #wsc.of_type(m, "task.created") == 1 end), json.encode(c:messages()))
    end
  end)
end)

-- BUS=dapr against a TEST DOUBLE of the Dapr sidecar (spec/support/dapr_double.py):
-- the double plays daprd's side of the HTTP contract (the start-up subscribe call,
-- deliveries with tokens and chunked bodies, retries on RETRY, the publish API with
-- scripted failures). The real sidecar is in dapr_e2e_spec.lua.
local h = require "spec.helpers"
local double_client = require "spec.fixtures.dapr-double.client"
local crypto = require "crypto"
local json = require "json"

local APP_TOKEN = "app-token-" .. crypto.hex(crypto.random_bytes(8))
local API_TOKEN = "api-token-" .. crypto.hex(crypto.random_bytes(8))

local uid = h.uid

-- A database with the bus tables (they come with the api bundle's migrations).
local function bus_database()
  local url = h.new_database()
  local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(url) .. " " .. h.sh_quote(h.host_bin) ..
    " migrate services/api")
  assert(ok, "migrate failed: " .. out)
  return url
end

local function event(fields)
  local ev = { specversion = "1.0", id = crypto.uuid_v7(), source = "todo-chatbot/api",
    type = "task.created", subject = "t1", datacontenttype = "application/json",
    data = { task = { id = "t1", title = "Buy milk" } } }
  for k, v in pairs(fields or {}) do ev[k] = v end
  return ev
end

describe("Dapr contract, deliveries (daprd -> app), with the sidecar double", function()
  local host, double, db

  lazy_setup(function()
    db = bus_database()
    local port = h.free_port()
    double = double_client.start { app_port = port, app_token = APP_TOKEN }
    host = h.start {
      port = port, database_url = db, bundles = { "spec/fixtures/dapr-consumer" },
      env = { BUS = "dapr", DAPR_HTTP_PORT = double.port, APP_API_TOKEN = APP_TOKEN,
        BUS_MAX_ATTEMPTS = 3, DAPR_RELAY = "off" },
    }
  end)

  lazy_teardown(function()
    if host then host:stop() end
    if double then double:stop() end
  end)

  local function seen()
    local status, body = host:request("GET", "/seen")
    assert.are.equal(200, status)
    return body
  end

  local function seen_id(id)
    for _, row in ipairs(seen().seen) do
      if row.event_id == id then return row end
    end
  end

  it("answers the start-up GET /dapr/subscribe with the manifest's subscriptions", function()
    local sub = assert(double:subscribed(), "daprd's start-up call never came")
    assert.are.equal(1, sub.calls)
    assert.are.equal(200, sub.status)
    assert.are.equal(json.null, sub.error)
    assert.matches("application/json", sub.headers["content-type"], 1, true)
    table.sort(sub.subscriptions, function(a, b) return a.topic < b.topic end)
    assert.are.same({
      { pubsubname = "pubsub", topic = "reminders", route = "/dapr/events/pubsub/reminders", metadata = {} },
      { pubsubname = "pubsub", topic = "task-events", route = "/dapr/events/pubsub/task-events", metadata = {} },
      { pubsubname = "pubsub-broadcast", topic = "task-updates",
        route = "/dapr/events/pubsub-broadcast/task-updates", metadata = {} },
    }, sub.subscriptions)
  end)

  it("acknowledges a delivery with SUCCESS after the handler's transaction committed", function()
    local ev = event()
    local res = double:deliver { topic = "task-events", event = ev }
    assert.are.equal("SUCCESS", res.outcome)
    assert.are.equal(200, res.attempts[1].status)
    assert.are.same({ status = "SUCCESS" }, json.decode(res.attempts[1].body))
    local row = assert(seen_id(ev.id))
    assert.are.equal("dapr-consumer", row.grp)
    assert.are.equal("task.created", row.type)
    assert.are.same(ev.data, row.data)
  end)

  it("accepts a chunked body (daprd sends one when a retry policy is active)", function()
    local ev = event { type = "task.updated" }
    local res = double:deliver { topic = "task-events", event = ev, chunked = true }
    assert.are.equal("SUCCESS", res.outcome)
    assert.is_truthy(seen_id(ev.id))
  end)

  it("runs a handler once per event id: a redelivery is acknowledged and changes nothing", function()
    local ev = event()
    assert.are.equal("SUCCESS", double:deliver({ topic = "task-events", event = ev }).outcome)
    local calls = seen().calls
    local again = double:deliver { topic = "task-events", event = ev }
    assert.are.equal("SUCCESS", again.outcome)
    assert.are.equal(calls, seen().calls)
    local n = 0
    for _, row in ipairs(seen().seen) do if row.event_id == ev.id then n = n + 1 end end
    assert.are.equal(1, n)
  end)

  it("answers RETRY when the handler fails, and SUCCESS on the redelivery that works", function()
    host:request("POST", "/fail", { body = { times = 1 } })
    local ev = event()
    local res = double:deliver { topic = "task-events", event = ev, max_attempts = 5 }
    assert.are.equal("SUCCESS", res.outcome)
    assert.are.equal(2, #res.attempts)
    assert.are.same({ status = "RETRY" }, json.decode(res.attempts[1].body))
    assert.are.equal(200, res.attempts[1].status)
    assert.is_truthy(seen_id(ev.id))
  end)

  it("dead-letters an event that keeps failing and answers DROP", function()
    host:request("POST", "/fail", { body = { times = -1 } })
    local ev = event()
    local res = double:deliver { topic = "task-events", event = ev, max_attempts = 10 }
    host:request("POST", "/fail", { body = { times = 0 } })
    assert.are.equal("DROP", res.outcome)
    assert.are.equal(3, #res.attempts) -- BUS_MAX_ATTEMPTS
    assert.is_nil(seen_id(ev.id))
    assert.are.equal("1", h.psql("select count(*) from bus_dead_letters where event_id = '" .. ev.id ..
      "' and grp = 'dapr-consumer'", db))
  end)

  -- An `idempotent` subscription (its own writes make a repeat harmless) is delivered on
  -- the fast path: the handler alone in one transaction, no bus_inbox record. With daprd
  -- delivering one event at a time, the round trips saved are the topic's throughput
  -- (the websocket group fell behind on a loaded machine without it; docs/reliability.md).
  local function count(sql)
    return tonumber(h.psql(sql, db))
  end

  it("delivers to an idempotent subscription without an idempotency record", function()
    local ev = event { type = "reminder.due" }
    local res = double:deliver { topic = "reminders", event = ev }
    assert.are.equal("SUCCESS", res.outcome)
    assert.are.equal(1, #res.attempts)
    assert.are.equal("idem", assert(seen_id(ev.id)).grp)
    assert.are.equal(0, count("select count(*) from bus_inbox where grp = 'idem'"))
    -- a redelivery runs the handler again; its own insert keeps it to one effect
    local calls = seen().calls
    assert.are.equal("SUCCESS", double:deliver({ topic = "reminders", event = ev }).outcome)
    assert.are.equal(calls + 1, seen().calls)
    assert.are.equal(1, count("select count(*) from dapr_consumer_seen where event_id = '" .. ev.id .. "'"))
  end)

  it("takes the careful path when an idempotent handler fails: RETRY, attempts counted, dead letter", function()
    -- the failed fast try and the careful one: the delivery fails once, then works
    host:request("POST", "/fail", { body = { times = 2, group = "idem" } })
    local ev = event { type = "reminder.due" }
    local res = double:deliver { topic = "reminders", event = ev, max_attempts = 5 }
    assert.are.equal("SUCCESS", res.outcome)
    assert.are.equal(2, #res.attempts)
    assert.are.same({ status = "RETRY" }, json.decode(res.attempts[1].body))
    assert.are.equal(1, count("select attempts from bus_attempts where grp = 'idem' and event_id = '" .. ev.id .. "'"))
    assert.is_truthy(seen_id(ev.id))

    host:request("POST", "/fail", { body = { times = -1, group = "idem" } })
    local dead = event { type = "reminder.due" }
    res = double:deliver { topic = "reminders", event = dead, max_attempts = 10 }
    host:request("POST", "/fail", { body = { times = 0 } })
    assert.are.equal("DROP", res.outcome)
    assert.are.equal(3, #res.attempts) -- BUS_MAX_ATTEMPTS
    assert.are.equal(1, count("select count(*) from bus_dead_letters where grp = 'idem' and event_id = '" ..
      dead.id .. "'"))
  end)

  it("answers DROP for a malformed event (not JSON, no usable id)", function()
    local res = double:deliver { topic = "task-events", body = "{not json" }
    assert.are.equal("DROP", res.outcome)
    res = double:deliver { topic = "task-events", event = event { id = "not-a-uuid" } }
    assert.are.equal("DROP", res.outcome)
    res = double:deliver { topic = "task-events", event = event { type = json.null } }
    assert.are.equal("DROP", res.outcome)
  end)

  it("decodes data_base64 deliveries", function()
    local ev = event { data = json.null, data_base64 = "eyJ0YXNrIjogeyJpZCI6ICJiNjQifX0=" }
    assert.are.equal("SUCCESS", double:deliver({ topic = "task-events", event = ev }).outcome)
    assert.are.same({ task = { id = "b64" } }, seen_id(ev.id).data)
  end)

  it("delivers broadcast topics through the broadcast component", function()
    local ev = event { type = "task.updated" }
    local res = double:deliver { pubsub = "pubsub-broadcast", topic = "task-updates", event = ev }
    assert.are.equal("SUCCESS", res.outcome)
    assert.are.equal("broadcast", seen_id(ev.id).grp)
  end)

  it("refuses a delivery without the right dapr-api-token (daprd then retries)", function()
    local ev = event()
    local res = double:deliver { topic = "task-events", event = ev, token = "wrong" }
    assert.are.equal("RETRY", res.outcome)
    assert.are.equal(401, res.attempts[1].status)
    res = double:deliver { topic = "task-events", event = ev, token = json.null }
    assert.are.equal(401, res.attempts[1].status)
    assert.is_nil(seen_id(ev.id))
    local status = host:request("GET", "/dapr/subscribe")
    assert.are.equal(401, status)
  end)

  it("never asks a token on the health paths (daprd's probe sends none)", function()
    assert.are.equal(200, (host:request("GET", "/healthz")))
    assert.are.equal(200, (host:request("GET", "/readyz")))
  end)

  it("lets daprd drop deliveries to routes nobody declared (404)", function()
    local status = host:request("POST", "/dapr/events/pubsub/nobody", { body = event(),
      headers = { ["dapr-api-token"] = APP_TOKEN } })
    assert.are.equal(404, status)
  end)
end)

describe("Dapr contract, publishing (app -> daprd), with the sidecar double", function()
  local host, double

  lazy_setup(function()
    local port = h.free_port()
    double = double_client.start { app_port = port, api_token = API_TOKEN }
    host = h.start {
      port = port, bundles = { "services/api" },
      env = { BUS = "dapr", DAPR_HTTP_PORT = double.port, DAPR_API_TOKEN = API_TOKEN },
    }
  end)

  lazy_teardown(function()
    if host then host:stop() end
    if double then double:stop() end
  end)

  local function create(token, title)
    local status, task = host:request("POST", "/api/tasks", { token = token, body = { title = title } })
    assert.are.equal(201, status)
    return task
  end

  -- The accepted task-events publishes about one task.
  local function published_for(subject)
    local out = {}
    for _, call in ipairs(double:published()) do
      if call.answered == 204 and call.topic == "task-events" and type(call.body) == "table"
          and call.body.subject == subject then
        out[#out + 1] = call
      end
    end
    return out
  end

  it("publishes a committed task change as a CloudEvent, keyed by user", function()
    local user = uid("alice")
    local task = create(h.token(user), "Buy milk")
    local calls = h.eventually(function() local c = published_for(task.id); return #c > 0 and c end, 10)
    assert.is_truthy(calls, "nothing published; double log:\n" .. double:log())
    local call = calls[1]
    assert.are.equal("pubsub", call.pubsub)
    assert.are.equal("task-events", call.topic)
    assert.are.equal(user, call.metadata.partitionKey)
    assert.matches("^application/cloudevents%+json", call.content_type)
    assert.are.equal(API_TOKEN, call.token)
    local ce = call.body
    assert.are.equal("1.0", ce.specversion)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", ce.id)
    assert.are.equal("task.created", ce.type)
    assert.are.equal("todo-chatbot/api", ce.source)
    assert.is_table(ce.data)
    -- relayed once, and the relay group's cursor is past it
    assert.are.equal(1, #calls)
    assert.is_truthy(h.eventually(function()
      return h.psql([[select count(*) from bus_outbox o join bus_cursors c on c.grp = 'relay'
        and c.topic = o.topic and c.part = o.part and c.seq >= o.seq where o.id = ']] .. ce.id .. "'",
        host.database_url) == "1"
    end))
  end)

  it("retries a failing sidecar and keeps the order of a user's changes", function()
    double:fail_publishes { 500, 503, 500 }
    local user = uid("bob")
    local token = h.token(user)
    local task = create(token, "one")
    for _, title in ipairs { "two", "three" } do
      local status = host:request("PATCH", "/api/tasks/" .. task.id, { token = token, body = { title = title } })
      assert.are.equal(200, status)
    end
    local calls = h.eventually(function() local c = published_for(task.id); return #c >= 3 and c end, 15)
    assert.is_truthy(calls, "not all published:\n" .. host:log())
    local types = {}
    for _, c in ipairs(calls) do types[#types + 1] = c.body.type end
    assert.are.same({ "task.created", "task.updated", "task.updated" }, types)
    assert.matches('"three"', json.encode(calls[3].body.data), 1, true)
    assert.not_matches('"three"', json.encode(calls[2].body.data), 1, true)
  end)

  it("does not lose an event the sidecar refuses (403 scoping): it retries until allowed", function()
    double:fail_publishes { 403 }
    local task = create(h.token(uid("carol")), "scoped")
    assert.is_truthy(h.eventually(function() return #published_for(task.id) == 1 end, 15))
    assert.matches("dapr publish refused", host:log(), 1, true)
  end)

  it("keeps publishing while the host drains on shutdown", function()
    double:fail_publishes { 500, 500, 500, 500, 500, 500 }
    local task = create(h.token(uid("dave")), "last words")
    h.sleep(0.2) -- the relay is now retrying the failing sidecar
    assert.are.equal(0, host:stop())
    local calls = published_for(task.id)
    assert.are.equal(1, #calls, "not published during the drain:\n" .. host:log())
  end)
end)

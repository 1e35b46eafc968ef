-- The Dapr driver's pure parts: the /dapr/subscribe list, delivery decoding, the
-- SUCCESS / RETRY / DROP combination, the token check and the publish status
-- classification (contract sections 1, 2a, 3, 9), and the cron binding's failing tick
-- (one error code, internal_error). No sidecar, no database.
local json = require "json"
local dapr = require "bus.drivers.dapr"
local app = require "bus.dapr_app"

local function noop() end

local UUID = "0190f3c2-7b1e-7cc1-9a4e-2f1b9d6f0a11"

describe("bus.dapr_app", function()
  local saved_run
  before_each(function()
    dapr.configure { pubsub = "pubsub", pubsub_broadcast = "pubsub-broadcast" }
    saved_run = app.run
  end)
  after_each(function()
    app.set_runner(saved_run)
    dapr.configure()
  end)

  local ctx = {
    bundle = "svc",
    subscriptions = {
      { topic = "task-events", group = "recurring-task", handler = noop },
      { topic = "task-events", group = "audit", handler = noop },
      { topic = "task-updates", group = "svc", broadcast = true, handler = noop,
        metadata = { rawPayload = false, ttl = 30 } },
    },
  }

  describe("GET /dapr/subscribe", function()
    it("lists one Dapr subscription per (pubsub, topic) with a leading-slash route", function()
      local subs = app.subscriptions(app.normalize(ctx))
      assert.are.same({
        { pubsubname = "pubsub", topic = "task-events", route = "/dapr/events/pubsub/task-events" },
        { pubsubname = "pubsub-broadcast", topic = "task-updates",
          route = "/dapr/events/pubsub-broadcast/task-updates",
          metadata = { rawPayload = "false", ttl = "30" } },
      }, subs)
    end)

    it("writes metadata values as JSON strings (a bool makes daprd drop every subscription)", function()
      local text = json.encode(app.subscriptions(app.normalize(ctx)))
      assert.matches('"rawPayload":"false"', text, 1, true)
      assert.not_matches('"rawPayload":false', text, 1, true)
    end)

    it("answers [] (an array, not {}) without subscriptions", function()
      assert.are.equal("[]", json.encode(app.subscriptions(app.normalize({ bundle = "x", subscriptions = {} }))))
    end)

    it("gives a broadcast consumer its own group per replica", function()
      local subs = app.normalize(ctx)
      assert.are.equal("recurring-task", subs[1].group)
      assert.matches("^svc@.+", subs[3].group)
      assert.are.equal("pubsub-broadcast", subs[3].pubsub)
    end)

    it("refuses names that cannot travel in a URL path", function()
      assert.has_error(function()
        app.normalize({ bundle = "x", subscriptions = { { topic = "a/b", group = "g", handler = noop } } })
      end)
      assert.has_error(function()
        app.normalize({ bundle = "x", subscriptions = { { topic = "t", group = "g h", handler = noop } } })
      end)
    end)

    it("adds GET /dapr/subscribe and one POST route per topic", function()
      local routes = app.routes(ctx)
      local seen = {}
      for _, r in ipairs(routes) do seen[#seen + 1] = r.method .. " " .. r.path end
      assert.are.same({ "GET /dapr/subscribe", "POST /dapr/events/pubsub/task-events",
        "POST /dapr/events/pubsub-broadcast/task-updates" }, seen)
    end)
  end)

  describe("decoding a delivery", function()
    it("keeps JSON data", function()
      local ev = assert(app.decode_event(json.encode { id = UUID, type = "task.created", data = { a = 1 } }))
      assert.are.same({ a = 1 }, ev.data)
    end)

    it("decodes data_base64 (rawPayload deliveries) and parses JSON content", function()
      local ev = assert(app.decode_event(json.encode {
        id = UUID, type = "t", datacontenttype = "application/json", data_base64 = "eyJhIjogWzEsIDJdfQ==" }))
      assert.are.same({ a = { 1, 2 } }, ev.data)
      ev = assert(app.decode_event(json.encode {
        id = UUID, type = "t", datacontenttype = "application/octet-stream", data_base64 = "aGk+Pz8/" }))
      assert.are.equal("hi>???", ev.data)
    end)

    it("rejects what can never be processed", function()
      assert.is_nil(app.decode_event(""))
      assert.is_nil(app.decode_event("not json"))
      assert.is_nil(app.decode_event("[1,2]"))
      assert.is_nil(app.decode_event(json.encode { id = "42", type = "t" }))
      assert.is_nil(app.decode_event(json.encode { id = UUID }))
    end)
  end)

  describe("answering daprd", function()
    local ev = { id = UUID, type = "t" }
    local subs = { { group = "a", topic = "t" }, { group = "b", topic = "t" } }

    local function with(outcomes)
      app.set_runner(function(sub) return outcomes[sub.group] end)
      return app.dispatch(subs, ev)
    end

    it("says SUCCESS when every handler is done or had already seen the event", function()
      assert.are.equal("SUCCESS", with { a = "done", b = "duplicate" })
    end)

    it("says RETRY when any handler must retry", function()
      assert.are.equal("RETRY", with { a = "done", b = "retry" })
      assert.are.equal("RETRY", with { a = "drop", b = "retry" })
    end)

    it("says DROP only when every handler dropped it", function()
      assert.are.equal("DROP", with { a = "drop", b = "drop" })
      assert.are.equal("SUCCESS", with { a = "drop", b = "done" })
    end)

    it("says RETRY when the runner raises or answers nonsense", function()
      app.set_runner(function() error("boom") end)
      assert.are.equal("RETRY", app.dispatch(subs, ev))
      assert.are.equal("RETRY", with { a = "success", b = "done" })
    end)
  end)

  describe("the app token (APP_API_TOKEN)", function()
    it("accepts anything when no token is configured", function()
      assert.is_true(app.token_ok({ headers = {} }, ""))
    end)

    it("requires the exact dapr-api-token header", function()
      assert.is_true(app.token_ok({ headers = { ["dapr-api-token"] = "s3cret" } }, "s3cret"))
      assert.is_false(app.token_ok({ headers = { ["dapr-api-token"] = "s3creT" } }, "s3cret"))
      assert.is_false(app.token_ok({ headers = {} }, "s3cret"))
    end)
  end)
end)

describe("bus.drivers.dapr", function()
  after_each(function() dapr.configure() end)

  it("publishes to the component's URL with the partition key as metadata", function()
    dapr.configure { http_port = 3501, pubsub = "events" }
    assert.are.equal("http://127.0.0.1:3501/v1.0/publish/events/task-events?metadata.partitionKey=user%201%2Fx",
      dapr.publish_url("task-events", "user 1/x"))
    assert.are.equal("http://127.0.0.1:3501/v1.0/publish/events/t", dapr.publish_url("t"))
  end)

  it("retries what can succeed later and not what cannot", function()
    assert.are.equal("ok", dapr.classify(204))
    for _, s in ipairs { 500, 502, 503, 504, 429, 408 } do assert.are.equal("transient", dapr.classify(s)) end
    for _, s in ipairs { 400, 401, 403, 404 } do assert.are.equal("permanent", dapr.classify(s)) end
  end)

  it("reads its settings from the environment", function()
    local c = dapr.configure()
    assert.are.equal(tonumber(os.getenv("DAPR_HTTP_PORT") or "3500"), c.http_port)
    assert.are.equal(os.getenv("DAPR_PUBSUB") or "pubsub", c.pubsub)
  end)

  it("refuses an event without an id", function()
    assert.has_error(function() dapr.publish("t", { type = "x" }) end)
    assert.has_error(function() dapr.publish("bad/topic", { id = UUID }) end)
  end)
end)

describe("bus.cron", function()
  it("answers a failing tick 500 with the one internal_error code, the cause only logged", function()
    local cron = require "bus.cron"
    local post
    for _, r in ipairs(cron.routes("tick-x", function() error("secret-cause") end)) do
      if r.method == "POST" then post = r.handler end
    end
    local status, body = post { headers = {} }
    assert.are.equal(500, status)
    assert.are.equal("internal_error", body.error.code)
    assert.is_nil(body.error.message:find("secret-cause", 1, true))
    local ok_status = select(1, cron.routes("tick-y", function() end)[2].handler { headers = {} })
    assert.are.equal(200, ok_status)
  end)
end)

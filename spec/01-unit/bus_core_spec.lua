-- lua/bus without a database: CloudEvents, partitioning, argument checks, manifests.
local cloudevents = require "bus.cloudevents"
local outbox = require "bus.outbox"
local consumer = require "bus.consumer"
local bus = require "bus"

describe("bus", function()
  it("builds CloudEvents 1.0 with a UUID id and a UTC time", function()
    local ev = cloudevents.new { source = "todo-chatbot/api", type = "task.created", subject = "s", data = { a = 1 } }
    assert.are.equal("1.0", ev.specversion)
    assert.truthy(ev.id:match("^%x+%-%x+%-7%x+%-%x+%-%x+$"))
    assert.truthy(ev.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
    assert.are.equal("application/json", ev.datacontenttype)
    assert.is_true(cloudevents.check(ev))
    assert.is_nil((cloudevents.check({ specversion = "1.0", id = "x", source = "" })))
    assert.has_error(function() cloudevents.new { source = "s" } end)
  end)

  it("maps a key to a stable partition", function()
    assert.are.equal(2166136261, outbox.hash(""))
    assert.are.equal(0xe40c292c, outbox.hash("a"))
    local p = outbox.partition("alice")
    assert.are.equal(p, outbox.partition("alice"))
    assert.is_true(p >= 0 and p < outbox.PARTITIONS)
  end)

  it("publishes only inside a transaction, with a key", function()
    assert.has_error(function() bus.publish(nil, "task-events", "task.created", {}, { key = "u" }) end,
      "bus.publish: the first argument must be a pg.tx transaction")
    local fake = setmetatable({}, { __name = "pg.tx" })
    assert.has_error(function() bus.publish(fake, "task events", "t", {}, { key = "u" }) end)
    assert.has_error(function() bus.publish(fake, "task-events", "t", {}, {}) end)
    fake.finished = true
    assert.has_error(function() bus.publish(fake, "task-events", "t", {}, { key = "u" }) end)
  end)

  it("checks manifest subscriptions and adds on_start", function()
    assert.has_error(function() bus.define { name = "x", subscriptions = { { topic = "t" } } } end)
    assert.has_error(function() bus.define { name = "x", subscriptions = { { topic = "t", handler = print } } } end)
    local m = bus.define { name = "x", subscriptions = { { topic = "t", group = "g", handler = print } } }
    assert.are.equal("function", type(m.on_start))
    assert.are.equal("todo-chatbot/x", bus.source)
  end)

  it("refuses a concurrency or idempotent flag that cannot work", function()
    local function define(extra)
      local s = { topic = "t", group = "g", handler = print }
      for k, v in pairs(extra) do s[k] = v end
      return bus.define { name = "x", subscriptions = { s } }
    end
    for _, bad in ipairs({ 0, -1, 1.5, "2" }) do
      assert.has_error(function() define { concurrency = bad } end,
        "x: subscriptions[1]: concurrency must be a positive integer")
    end
    assert.has_error(function() define { idempotent = "yes" } end, "x: subscriptions[1]: idempotent must be a boolean")
    assert.are.equal("function", type(define({ concurrency = 3, idempotent = true }).on_start))
  end)

  it("backs off exponentially up to a cap", function()
    local sub = { backoff = 0.5, backoff_max = 3 }
    assert.are.same({ 0.5, 1, 2, 3 }, { consumer.backoff(sub, 1), consumer.backoff(sub, 2),
      consumer.backoff(sub, 3), consumer.backoff(sub, 4) })
  end)
end)

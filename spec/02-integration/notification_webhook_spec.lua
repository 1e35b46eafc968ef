-- Webhook delivery of reminders (issue 15) to a real HTTP receiver in another process
-- (spec/support/webhook_receiver.py): the settings route's checks, the signature the
-- receiver can verify with the secret answered once, retries on 5xx and timeouts with
-- exponential backoff (attempt times checked: no retry storm), a limit after which the
-- delivery stops and says so, a 4xx not retried, and the delivery log scoped to its user.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"
local crypto = require "crypto"

local BASE = 0.4 -- NOTIFY_RETRY_BASE_SECONDS

local receiver = n.receiver

local function deliveries(host, user)
  local s, body = host:request("GET", "/api/notification-settings/deliveries", { token = h.token(user) })
  assert.are.equal(200, s)
  return body.items
end

describe("notification webhook", function()
  local host
  setup(function()
    host = n.start { env = { NOTIFY_RETRY_BASE_SECONDS = tostring(BASE), NOTIFY_MAX_ATTEMPTS = "4",
      NOTIFY_WEBHOOK_TIMEOUT_SECONDS = "1" } }
  end)
  teardown(function() host:stop() end)

  local function put(user, body)
    return host:request("PUT", "/api/notification-settings", { token = h.token(user), body = body })
  end

  it("refuses URLs that are not https, loopback outside development, private or malformed", function()
    local cases = {
      { { webhook_url = "ftp://hooks.example.com/x" }, "webhook_url must use https" },
      { { webhook_url = "http://hooks.example.com/x" }, "http is allowed only to a loopback address" },
      { { webhook_url = "https://10.1.2.3/x" }, "private or reserved" },
      { { webhook_url = "https://192.168.0.10/x" }, "private or reserved" },
      { { webhook_url = "https://169.254.169.254/latest" }, "private or reserved" },
      { { webhook_url = "https://[fd00::1]/x" }, "private or reserved" },
      { { webhook_url = "https://[::ffff:10.0.0.1]/x" }, "private or reserved" },
      { { webhook_url = "https://2130706433/x" }, "four decimal numbers" },
      { { webhook_url = "https://user:pw@hooks.example.com/x" }, "user name or password" },
      { { webhook_url = "https://hooks.example.com:70000/x" }, "invalid port" },
      { { webhook_url = "https://intranet/x" }, "fully qualified" },
      { { webhook_url = "not a url" }, "must not contain spaces" },
      { { webhook_url = 42 }, "must be a string URL" },
      { { webhook_url = "https://hooks.example.com/x", extra = 1 }, "unknown field extra" },
      { {}, "webhook_url is required" },
      { { webhook_url = "https://hooks.example.com/x", rotate_secret = "yes" }, "rotate_secret must be true or false" },
    }
    for _, c in ipairs(cases) do
      local s, body = put("wh-bad", c[1])
      assert.are.equal(422, s, json.encode(c[1]))
      assert.truthy(body.error.message:find(c[2], 1, true), json.encode(c[1]) .. " -> " .. body.error.message)
    end
    local s = host:request("PUT", "/api/notification-settings",
      { token = h.token("wh-bad"), body = "{", headers = { ["Content-Type"] = "application/json" } })
    assert.are.equal(400, s)
    -- nothing was stored
    local _, settings = host:request("GET", "/api/notification-settings", { token = h.token("wh-bad") })
    assert.are.equal(json.null, settings.webhook_url)
  end)

  it("answers the secret once, keeps it on a URL change, rotates it on request, removes the webhook", function()
    local s, body = put("wh-sec", { webhook_url = "https://hooks.example.com/a" })
    assert.are.equal(201, s)
    local secret = body.webhook_secret
    assert.truthy(secret and #secret > 40, json.encode(body))
    s, body = put("wh-sec", { webhook_url = "https://hooks.example.com/b" })
    assert.are.equal(200, s)
    assert.is_nil(body.webhook_secret)
    assert.are.equal("https://hooks.example.com/b", body.webhook_url)
    s, body = host:request("GET", "/api/notification-settings", { token = h.token("wh-sec") })
    assert.are.equal(200, s)
    assert.is_nil(body.webhook_secret)
    assert.is_nil(json.encode(body):find(secret, 1, true))
    s, body = put("wh-sec", { webhook_url = "https://hooks.example.com/b", rotate_secret = true })
    assert.are.equal(200, s)
    assert.truthy(body.webhook_secret and body.webhook_secret ~= secret)
    s, body = put("wh-sec", { webhook_url = json.null })
    assert.are.equal(200, s)
    assert.are.equal(json.null, body.webhook_url)
    assert.is_nil(host:log():find(secret, 1, true), "the secret was logged")
  end)

  it("delivers a signed POST the receiver verifies with its secret", function()
    local r = receiver("200")
    finally(r.stop)
    local s, body = put("wh-ok", { webhook_url = r.url })
    assert.are.equal(201, s)
    local secret = body.webhook_secret
    r.know(secret)
    local t = n.task(host, "wh-ok", { title = "call mum", reminders = { { at = n.iso(os.time() + 2) } } })
    assert.truthy(h.eventually(function() return #r.requests() == 1 end, 8), host:log())
    local req = r.requests()[1]
    -- the receiver process verified it with the documented example
    assert.is_true(req.verified)
    local ts = req.headers["x-todo-timestamp"]
    -- the receiver's check: HMAC-SHA256 over "<timestamp>.<body>", compared in constant time
    local expected = "v1=" .. crypto.hex(crypto.hmac_sha256(secret, ts .. "." .. req.body))
    assert.are.equal(expected, req.headers["x-todo-signature"])
    assert.is_true(crypto.constant_time_eq(expected, req.headers["x-todo-signature"]))
    assert.is_true(math.abs(tonumber(ts) - os.time()) < 10)
    -- a tampered body does not verify
    assert.are_not.equal(expected, "v1=" .. crypto.hex(crypto.hmac_sha256(secret, ts .. "." .. req.body .. " ")))
    local payload = json.decode(req.body)
    assert.are.equal("reminder.due", payload.type)
    assert.are.equal(t.id, payload.notification.task_id)
    assert.are.equal("call mum", payload.notification.title)
    assert.are.equal(payload.delivery_id, req.headers["x-todo-delivery"])
    assert.truthy(h.eventually(function()
      local d = deliveries(host, "wh-ok")[1]
      return d and d.state == "delivered"
    end, 5))
    local d = deliveries(host, "wh-ok")[1]
    assert.are.equal(1, d.attempts)
    assert.are.equal(200, d.attempt_log[1].status)
    -- another user sees none of it
    assert.are.equal(0, #deliveries(host, "wh-other"))
    h.sleep(0.5)
    assert.are.equal(1, #r.requests())
  end)

  it("retries a 500 and a timeout with growing waits, then delivers", function()
    local r = receiver("500,sleep:2,200")
    finally(r.stop)
    assert.are.equal(201, (put("wh-retry", { webhook_url = r.url })))
    n.task(host, "wh-retry", { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
    assert.truthy(h.eventually(function()
      local d = deliveries(host, "wh-retry")[1]
      return d and d.state == "delivered"
    end, 15), host:log())
    local reqs = r.requests()
    assert.are.equal(3, #reqs)
    -- attempt 2 waits 0.5..1 x BASE after attempt 1; attempt 3 comes after the 1 s timeout
    -- plus 0.5..1 x 2 BASE
    local gap1, gap2 = reqs[2].t - reqs[1].t, reqs[3].t - reqs[2].t
    assert.is_true(gap1 >= BASE / 2 - 0.05 and gap1 < BASE + 0.6, "gap1 " .. gap1)
    assert.is_true(gap2 >= 1 + BASE - 0.05 and gap2 < 1 + 2 * BASE + 0.8, "gap2 " .. gap2)
    local d = deliveries(host, "wh-retry")[1]
    assert.are.equal(3, d.attempts)
    assert.are.equal(500, d.attempt_log[1].status)
    assert.are.equal(json.null, d.attempt_log[2].status)
    assert.truthy(tostring(d.attempt_log[2].error):find("timeout", 1, true), json.encode(d))
    assert.are.equal(200, d.attempt_log[3].status)
    -- the same delivery id on every attempt (receivers deduplicate by it)
    assert.are.equal(reqs[1].headers["x-todo-delivery"], reqs[3].headers["x-todo-delivery"])
  end)

  it("stops after the limit and says so; waits grow (no retry storm)", function()
    local r = receiver("503")
    finally(r.stop)
    assert.are.equal(201, (put("wh-limit", { webhook_url = r.url })))
    n.task(host, "wh-limit", { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
    assert.truthy(h.eventually(function()
      local d = deliveries(host, "wh-limit")[1]
      return d and d.state == "failed"
    end, 15), host:log())
    local reqs = r.requests()
    assert.are.equal(4, #reqs)
    for k = 2, 4 do
      local gap = reqs[k].t - reqs[k - 1].t
      local full = BASE * 2 ^ (k - 2)
      assert.is_true(gap >= full / 2 - 0.05, "attempt " .. k .. " came " .. gap .. " s after the previous")
    end
    local d = deliveries(host, "wh-limit")[1]
    assert.are.equal(4, d.attempts)
    assert.truthy(d.reason:find("gave up after 4 attempts", 1, true), d.reason)
    h.sleep(BASE * 8)
    assert.are.equal(4, #r.requests())
  end)

  it("does not retry a 4xx refusal, but retries 429", function()
    -- one finally for both receivers: busted keeps only the last finally of a test
    local r, r2 = receiver("404"), nil
    finally(function()
      r.stop()
      if r2 then r2.stop() end
    end)
    assert.are.equal(201, (put("wh-404", { webhook_url = r.url })))
    n.task(host, "wh-404", { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
    assert.truthy(h.eventually(function()
      local d = deliveries(host, "wh-404")[1]
      return d and d.state == "failed"
    end, 8))
    local d = deliveries(host, "wh-404")[1]
    assert.are.equal(1, d.attempts)
    assert.truthy(d.reason:find("not retried", 1, true), d.reason)
    h.sleep(BASE * 3)
    assert.are.equal(1, #r.requests())

    r2 = receiver("429,200")
    assert.are.equal(201, (put("wh-429", { webhook_url = r2.url })))
    n.task(host, "wh-429", { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
    assert.truthy(h.eventually(function()
      local x = deliveries(host, "wh-429")[1]
      return x and x.state == "delivered"
    end, 8))
    assert.are.equal(2, #r2.requests())
  end)
end)

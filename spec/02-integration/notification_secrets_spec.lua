-- Webhook signing secrets at rest (notification.secret_box): the database holds them
-- sealed (AES-256-GCM) under WEBHOOK_SIGNING_KEY with the key's id, never in plain text;
-- a receiver still verifies the signatures with the secret answered once; a row left in
-- plain text from before the migration is sealed at start; under a wrong key nothing is
-- sent and the delivery log says why; with the old key as WEBHOOK_SIGNING_KEY_PREVIOUS
-- rows are resealed under the new one; a sealed secret moved to another user's row does
-- not open; a key too short refuses to store a secret and writes nothing.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"

local K1 = "first-webhook-signing-key-0123456789abcdef"
local K2 = "second-webhook-signing-key-0123456789abcdef"

local function start(env, url)
  local e = { NOTIFY_RETRY_BASE_SECONDS = "0.2", NOTIFY_MAX_ATTEMPTS = "2" }
  for k, v in pairs(env) do e[k] = v end
  return n.start { env = e, database_url = url }
end

local function row(host, user)
  local out = h.psql("SELECT coalesce(secret, '<null>') || '|' || coalesce(secret_sealed, '<null>') || '|' || "
    .. "coalesce(secret_key_id, '<null>') FROM notification_channels WHERE user_id = '" .. user .. "'",
    host.database_url)
  local plain, sealed, kid = out:match("^(.-)|(.-)|(.-)$")
  return { plain = plain, sealed = sealed, kid = kid }
end

local function last_delivery(host, user, state)
  local d
  assert.truthy(h.eventually(function()
    local s, body = host:request("GET", "/api/notification-settings/deliveries", { token = h.token(user) })
    d = s == 200 and body.items[1]
    return d and d.state == state
  end, 10), host:log())
  return d
end

local function remind(host, user)
  n.task(host, user, { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
end

describe("notification webhook secrets at rest", function()
  local r, url, secret, kid1
  setup(function() r = n.receiver("200") end)
  teardown(function() r.stop() end)

  it("stores the secret sealed, never in plain text, and the receiver verifies deliveries", function()
    local host = start { WEBHOOK_SIGNING_KEY = K1 }
    finally(function() host:stop() end)
    url = host.database_url
    local s, body = host:request("PUT", "/api/notification-settings",
      { token = h.token("sec-a"), body = { webhook_url = r.url } })
    assert.are.equal(201, s, json.encode(body))
    secret = body.webhook_secret
    r.know(secret)
    local x = row(host, "sec-a")
    assert.are.equal("<null>", x.plain)
    assert.truthy(x.kid:match("^%x+$") and #x.kid == 12, x.kid)
    kid1 = x.kid
    local dump = h.psql("SELECT row_to_json(c)::text FROM notification_channels c", url)
    assert.is_nil(dump:find(secret, 1, true))
    assert.is_nil(dump:find(secret:sub(7, 30), 1, true))
    assert.is_nil(dump:find(K1, 1, true))
    -- a second user's copy of the same plain text would not match: random nonce, own aad
    remind(host, "sec-a")
    local d = last_delivery(host, "sec-a", "delivered")
    assert.are.equal(1, d.attempts)
    assert.are.equal(1, #r.requests())
    assert.is_true(r.requests()[1].verified)
    -- the API shows it once only
    local _, settings = host:request("GET", "/api/notification-settings", { token = h.token("sec-a") })
    assert.is_nil(settings.webhook_secret)
    assert.is_nil(host:log():find(secret, 1, true))
    assert.is_nil(host:log():find(K1, 1, true))

    -- a row written in plain text before the migration is sealed at start (and delivers)
    h.psql("INSERT INTO notification_channels (user_id, channel, target, secret) VALUES "
      .. "('sec-legacy', 'webhook', '" .. r.url .. "', '" .. secret .. "')", url)
  end)

  it("seals rows left in plain text when the bundle starts, and delivers with them", function()
    local host = start({ WEBHOOK_SIGNING_KEY = K1 }, url)
    finally(function() host:stop() end)
    assert.truthy(h.eventually(function() return row(host, "sec-legacy").plain == "<null>" end, 10), host:log())
    local x = row(host, "sec-legacy")
    assert.are.equal(kid1, x.kid)
    assert.is_nil(x.sealed:find(secret, 1, true))
    remind(host, "sec-legacy")
    last_delivery(host, "sec-legacy", "delivered")
    assert.are.equal(2, #r.requests())
    assert.is_true(r.requests()[2].verified)
  end)

  it("sends nothing under a wrong key and says which key is missing", function()
    local host = start({ WEBHOOK_SIGNING_KEY = K2 }, url)
    finally(function() host:stop() end)
    remind(host, "sec-a")
    local d = last_delivery(host, "sec-a", "failed")
    assert.are.equal(2, d.attempts)
    local err = tostring(d.attempt_log[1].error)
    assert.truthy(err:find("sealed under key " .. kid1 .. ", which is neither WEBHOOK_SIGNING_KEY", 1, true), err)
    assert.truthy(d.reason:find("gave up after 2 attempts", 1, true), d.reason)
    assert.are.equal(2, #r.requests())
    -- the row is left as it was (the right key may come back)
    assert.are.equal(kid1, row(host, "sec-a").kid)
  end)

  it("opens rows under WEBHOOK_SIGNING_KEY_PREVIOUS and reseals them under the new key", function()
    local host = start({ WEBHOOK_SIGNING_KEY = K2, WEBHOOK_SIGNING_KEY_PREVIOUS = K1 }, url)
    finally(function() host:stop() end)
    assert.truthy(h.eventually(function() return row(host, "sec-a").kid ~= kid1 end, 10), host:log())
    local kid2 = row(host, "sec-a").kid
    assert.truthy(kid2:match("^%x+$") and #kid2 == 12)
    assert.are.equal(kid2, row(host, "sec-legacy").kid)
    remind(host, "sec-a")
    assert.truthy(h.eventually(function() return #r.requests() == 3 end, 10), host:log())
    assert.is_true(r.requests()[3].verified)
    -- a sealed secret copied onto another user's row does not open there
    h.psql("UPDATE notification_channels SET secret_sealed = (SELECT secret_sealed FROM notification_channels "
      .. "WHERE user_id = 'sec-a') WHERE user_id = 'sec-legacy'", url)
    remind(host, "sec-legacy")
    local d = last_delivery(host, "sec-legacy", "failed")
    assert.truthy(tostring(d.attempt_log[1].error):find("does not open under key " .. kid2, 1, true),
      json.encode(d.attempt_log))
    assert.are.equal(3, #r.requests())
  end)

  it("refuses to store a secret when the key is too short, and writes nothing", function()
    local host = start { WEBHOOK_SIGNING_KEY = "short" }
    finally(function() host:stop() end)
    local s, body = host:request("PUT", "/api/notification-settings",
      { token = h.token("sec-b"), body = { webhook_url = "https://hooks.example.com/x" } })
    assert.are.equal(503, s, json.encode(body))
    assert.are.equal("webhook_key_unavailable", body.error.code)
    assert.truthy(body.error.message:find("signing key is not configured", 1, true))
    assert.are.equal("0", h.psql("SELECT count(*) FROM notification_channels", host.database_url))
    assert.truthy(host:log():find("at least 32 characters", 1, true))
  end)
end)

-- A webhook whose host NAME resolves to a private, loopback or link-local address is
-- refused when the delivery connects (the http client's deny_private checks the address
-- it is about to connect to), not only IP literals when the URL is set. The names are
-- pinned to addresses with NOTIFY_WEBHOOK_RESOLVE (test only, no /etc/hosts edit); the
-- loopback one points at a real receiver that must see nothing. This host runs without
-- NOTIFY_WEBHOOK_DEV, as production does; notification_webhook_spec shows that
-- development (NOTIFY_WEBHOOK_DEV=1) still delivers to a loopback receiver.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"

local function deliveries(host, user)
  local s, body = host:request("GET", "/api/notification-settings/deliveries", { token = h.token(user) })
  assert.are.equal(200, s)
  return body.items
end

describe("notification webhook SSRF", function()
  local host, r
  setup(function()
    r = n.receiver("200")
    host = n.start { env = {
      NOTIFY_WEBHOOK_DEV = false, NOTIFY_RETRY_BASE_SECONDS = "0.2",
      NOTIFY_WEBHOOK_RESOLVE = "hooks.rebind.test:" .. r.port .. ":127.0.0.1,"
        .. "metadata.rebind.test:443:169.254.169.254,v6.rebind.test:" .. r.port .. ":[::ffff:127.0.0.1]",
    } }
  end)
  teardown(function()
    host:stop()
    r.stop()
  end)

  local cases = {
    { user = "ssrf-lo", url = function() return "https://hooks.rebind.test:" .. r.port .. "/hook" end,
      address = "127.0.0.1" },
    { user = "ssrf-meta", url = function() return "https://metadata.rebind.test/latest/meta-data/" end,
      address = "169.254.169.254" },
    { user = "ssrf-v6", url = function() return "https://v6.rebind.test:" .. r.port .. "/hook" end,
      address = "::ffff:127.0.0.1" },
  }

  for _, c in ipairs(cases) do
    it("refuses a name resolving to " .. c.address .. " at connect time, with the reason recorded", function()
      -- the URL itself passes: its host is a name, not a literal
      local s, body = host:request("PUT", "/api/notification-settings",
        { token = h.token(c.user), body = { webhook_url = c.url() } })
      assert.are.equal(201, s, json.encode(body))
      n.task(host, c.user, { title = "t", reminders = { { at = n.iso(os.time() + 2) } } })
      assert.truthy(h.eventually(function()
        local d = deliveries(host, c.user)[1]
        return d and d.state == "failed"
      end, 10), host:log())
      local d = deliveries(host, c.user)[1]
      assert.are.equal(1, d.attempts) -- not retried: the URL is at fault
      assert.truthy(d.reason:find("resolves to a private, loopback or reserved address (" .. c.address .. ")", 1,
        true), d.reason)
      assert.truthy(tostring(d.attempt_log[1].error):find("refused to connect to " .. c.address, 1, true),
        json.encode(d.attempt_log))
      assert.are.equal(json.null, d.attempt_log[1].status)
      assert.are.equal(0, #r.requests())
    end)
  end
end)

-- Reminders without a database (issue 15): ISO 8601 durations (reminders.duration), the
-- shape the API accepts (reminders.check), the instants a task's reminders name
-- (reminders.instants, across daylight-saving changes), and which webhook URLs a user may
-- set (services/notification/webhook_url.lua).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local tz = require "tz"
local json = require "json"
local duration = require "reminders.duration"
local reminders = require "reminders"

local function t(s) return (tz.parse_rfc3339(s)) end
local function utc(e) return tz.format(math.floor(e), "UTC") end

describe("reminders.duration", function()
  it("parses ISO 8601 durations", function()
    local d = assert(duration.parse("P2M3W4DT5H6M7S"))
    assert.are.same({ 0, 2, 3, 4, 5, 6, 7 }, { d.years, d.months, d.weeks, d.days, d.hours, d.minutes, d.seconds })
    assert.are.equal(1, duration.parse("P1Y").years)
    assert.are.equal(15, duration.parse("PT15M").minutes)
    assert.are.equal(1, duration.parse("P1D").days)
    assert.are.equal(0, duration.approx_seconds(duration.parse("PT0S")))
  end)

  it("refuses what is not one, and more than a year", function()
    for _, s in ipairs { "", "P", "PT", "15M", "PT15", "P1H", "PT1D", "PT1M1H", "P1D1D", "PT-5M", "PT1.5M",
      "pt15m", "P1DT", "PT15M ", 15, "PT1234567M" } do
      assert.is_nil(duration.parse(s), tostring(s))
    end
    local _, why = duration.parse("P2Y")
    assert.truthy(why:find("at most a year", 1, true))
  end)

  it("counts date parts on the zone's wall clock and time parts exactly", function()
    -- 2027-03-28 02:00 CET -> 03:00 CEST (Europe/Berlin)
    local due = t("2027-03-28T09:00:00+02:00")
    assert.are.equal("2027-03-27T08:00:00Z", utc(duration.shift(due, duration.parse("P1D"), -1, "Europe/Berlin")))
    assert.are.equal("2027-03-27T07:00:00Z", utc(duration.shift(due, duration.parse("PT24H"), -1, "Europe/Berlin")))
    -- 2027-10-31 03:00 CEST -> 02:00 CET
    local autumn = t("2027-10-31T09:00:00+01:00")
    assert.are.equal("2027-10-30T07:00:00Z", utc(duration.shift(autumn, duration.parse("P1D"), -1, "Europe/Berlin")))
    -- without a zone: UTC
    assert.are.equal("2027-03-27T07:00:00Z", utc(duration.shift(due, duration.parse("P1D"), -1)))
    -- a month back keeps the day, clamped to the month's end
    assert.are.equal("2027-02-28T09:00:00Z",
      utc(duration.shift(t("2027-03-31T09:00:00Z"), duration.parse("P1M"), -1, "UTC")))
    -- forward (snooze) and fractions kept
    assert.are.equal(t("2027-01-01T00:10:00Z") + 0.25,
      duration.shift(t("2027-01-01T00:00:00Z") + 0.25, duration.parse("PT10M"), 1, "UTC"))
  end)
end)

describe("reminders.check", function()
  local due = "2026-05-01T09:00:00Z"
  it("cleans a valid list", function()
    local out = assert(reminders.check({ { at = "2026-05-01T08:00:00+02:00" }, { before = "PT15M" },
      { before = "PT15M" } }, due))
    assert.are.same({ { at = "2026-05-01T08:00:00+02:00" }, { before = "PT15M" } }, out)
    assert.are.same({}, assert(reminders.check({}, json.null)))
  end)

  it("names the part at fault", function()
    local cases = {
      { { { at = "soon" } }, due, "reminders[1].at" },
      { { { before = "PT1M" }, { before = "1 minute" } }, due, "reminders[2].before" },
      { { { before = "PT1M", at = due } }, due, "reminders[1]" },
      { { { via = "sms" } }, due, "reminders[1]" },
      { { "PT1M" }, due, "reminders[1]" },
      { { a = 1 }, due, "reminders" },
    }
    for _, c in ipairs(cases) do
      local out, msg, code, field = reminders.check(c[1], c[2])
      assert.is_nil(out)
      assert.are.equal("string", type(msg))
      assert.are.equal("invalid_field", code)
      assert.are.equal(c[3], field)
    end
    local list = {}
    for i = 1, 11 do list[i] = { before = "PT" .. i .. "M" } end
    local _, msg, _, field = reminders.check(list, due)
    assert.are.equal("reminders", field)
    assert.truthy(msg:find("at most 10", 1, true))
  end)

  it("refuses an offset without a due time, and leaves it to the caller when unknown", function()
    local _, _, code, field = reminders.check({ { before = "PT5M" } }, json.null)
    assert.are.equal("reminders[1].before", field)
    assert.are.equal("reminder_needs_due", code)
    assert.truthy(reminders.check({ { before = "PT5M" } }, nil))
    assert.are.equal(2, reminders.needs_due({ { at = due }, { before = "PT5M" } }))
  end)
end)

describe("reminders.instants", function()
  it("computes every reminder's instant, skipping what is not valid", function()
    local got = reminders.instants { due_at = "2027-03-28T07:00:00Z", tz = "Europe/Berlin",
      reminders = { { before = "P1D" }, { at = "2027-03-01T10:00:00+01:00" }, { before = "junk" },
        { minutes = 5 }, "x", { before = "P1D" } } }
    assert.are.equal(2, #got)
    assert.are.equal("before:P1D", got[1].key)
    assert.are.equal("2027-03-27T08:00:00Z", utc(got[1].at))
    assert.are.equal("at:2027-03-01T10:00:00+01:00", got[2].key)
    assert.are.equal("2027-03-01T09:00:00Z", utc(got[2].at))
    -- an offset without a due time names no instant
    assert.are.same({}, reminders.instants { reminders = { { before = "PT5M" } } })
    assert.are.same({}, reminders.instants { reminders = json.null })
  end)
end)

describe("reminders within years 1 to 9999", function()
  it("refuses an instant outside the range and names an offset that leaves it", function()
    local ok, msg, code, field = reminders.check({ { at = "0001-01-01T00:00:00+05:00" } }, nil)
    assert.are.same({ nil, "invalid_field", "reminders[1].at" }, { ok, code, field })
    assert.truthy(msg:find("supported range", 1, true), msg)
    assert.is_nil((reminders.check({ { at = "9999-12-31T23:59:59-05:00" } }, nil)))
    assert.truthy(reminders.check({ { at = "0001-01-01T00:00:00Z" }, { at = "9999-12-31T23:59:59Z" } }, nil))
    local list = { { at = "2026-01-01T00:00:00Z" }, { before = "PT10M" }, { before = "PT1H" } }
    assert.are.equal(3, reminders.out_of_range(list, "0001-01-01T00:30:00Z"))
    assert.is_nil(reminders.out_of_range(list, "0001-01-01T01:00:00Z"))
    -- in the task's zone: one day before noon on 1 January in Berlin is still year 0 in UTC
    assert.are.equal(1, reminders.out_of_range({ { before = "P1D" } }, "0001-01-01T12:00:00+01:00", "Europe/Berlin"))
  end)

  it("names no instant outside the range (the schedule skips it)", function()
    local got = reminders.instants { due_at = "0001-01-01T00:30:00Z",
      reminders = { { before = "PT1H" }, { before = "PT10M" }, { at = "0001-01-01T00:00:00+05:00" } } }
    assert.are.equal(1, #got)
    assert.are.equal("before:PT10M", got[1].key)
  end)
end)

describe("notification webhook URLs", function()
  local saved = os.getenv
  local env = {}
  setup(function()
    -- the module reads its flags through os.getenv at check time
    os.getenv = function(k) if env[k] ~= nil then return env[k] end return saved(k) end -- luacheck: ignore
  end)
  teardown(function() os.getenv = saved end) -- luacheck: ignore
  local check = dofile("services/notification/webhook_url.lua").check

  it("accepts public https URLs", function()
    for _, u in ipairs { "https://hooks.example.com/todo", "https://hooks.example.com:8443/a?b=c",
      "https://203.0.113.7/x", "https://[2001:db8::1]/x" } do
      assert.are.equal(u, (check(u)), u)
    end
  end)

  it("refuses http, private and loopback addresses, credentials, odd hosts", function()
    env = { NOTIFY_WEBHOOK_DEV = "0", NOTIFY_WEBHOOK_ALLOW_PRIVATE = "0" }
    for _, u in ipairs { "http://hooks.example.com/x", "https://127.0.0.1/x", "https://localhost/x",
      "https://api.localhost/x", "https://10.0.0.1/x", "https://172.20.1.1/x", "https://192.168.1.1/x",
      "https://169.254.169.254/x", "https://100.64.0.1/x", "https://0.0.0.0/x", "https://[::1]/x",
      "https://[fe80::1]/x", "https://[fd12::1]/x", "https://[::ffff:127.0.0.1]/x", "https://0x7f.0.0.1/x",
      "https://017700000001/x", "https://a@hooks.example.com/x", "https://hooks..example.com/x",
      "https://hooks.example.com/x#frag", "https:///x", "file:///etc/passwd", "https://host/x" } do
      assert.is_nil((check(u)), u)
    end
  end)

  it("allows loopback in development and private addresses when told to", function()
    env = { NOTIFY_WEBHOOK_DEV = "1" }
    assert.truthy(check("http://127.0.0.1:9000/hook"))
    assert.truthy(check("http://localhost:9000/hook"))
    assert.truthy(check("http://[::1]:9000/hook"))
    assert.is_nil((check("http://10.0.0.1/hook")))
    assert.is_nil((check("http://hooks.example.com/hook")))
    env = { NOTIFY_WEBHOOK_ALLOW_PRIVATE = "1" }
    assert.truthy(check("https://10.0.0.1/hook"))
    assert.is_nil((check("http://10.0.0.1/hook")))
  end)
end)

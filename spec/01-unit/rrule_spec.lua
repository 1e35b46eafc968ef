-- The recurrence engine: parsing, validation and the classic traps of
-- expansion in local wall-clock time.
local tz = require "tz"
local recurrence = require "recurrence"
local rrule = require "recurrence.rrule"

local B, NY, SYD = "Europe/Berlin", "America/New_York", "Australia/Sydney"

-- Occurrences of rule from a local start, as RFC 3339 strings.
local function occ(rule, zone, start, n, after)
  local t0 = tz.from_local(start[1], start[2], start[3], start[4] or 9, start[5] or 0, start[6] or 0, zone)
  local list = assert(recurrence.expand(rule, t0, zone, n, after))
  local out = {}
  for i, t in ipairs(list) do out[i] = tz.format(t, zone) end
  return out
end

describe("rrule.parse / validate", function()
  it("parses every part and prints it back canonically", function()
    local r = assert(recurrence.parse("rrule:freq=monthly;byday=2tu,-1fr;interval=2;wkst=su;count=3"))
    assert.equal("MONTHLY", r.freq)
    assert.equal(2, r.interval)
    assert.same({ day = "TU", wd = 1, n = 2 }, r.byday[1])
    assert.same({ day = "FR", wd = 4, n = -1 }, r.byday[2])
    assert.equal("FREQ=MONTHLY;INTERVAL=2;COUNT=3;BYDAY=2TU,-1FR;WKST=SU", rrule.to_string(r))
    assert.equal("FREQ=YEARLY;UNTIL=20301231T000000Z;BYMONTH=1,2;BYWEEKNO=1;BYYEARDAY=-1;BYDAY=MO;"
      .. "BYHOUR=9;BYMINUTE=30;BYSECOND=15;BYSETPOS=1",
      recurrence.validate("FREQ=YEARLY;BYSETPOS=1;BYSECOND=15;BYMINUTE=30;BYHOUR=9;BYDAY=MO;"
        .. "BYYEARDAY=-1;BYWEEKNO=1;BYMONTH=1,2;UNTIL=20301231T000000Z"))
  end)

  it("rejects every invalid part with a message naming it", function()
    local bad = {
      [""] = "empty rule",
      ["BYDAY=MO"] = "FREQ: missing",
      ["FREQ=SECONDLY"] = "FREQ: SECONDLY is not supported",
      ["FREQ=FORTNIGHTLY"] = "FREQ: 'FORTNIGHTLY' is not one of",
      ["FREQ=DAILY;INTERVAL=0"] = "INTERVAL: 0 is out of range",
      ["FREQ=DAILY;INTERVAL=x"] = "INTERVAL: 'X' is not an integer",
      ["FREQ=DAILY;COUNT=0"] = "COUNT: 0 is out of range",
      ["FREQ=DAILY;COUNT=2;UNTIL=20260101"] = "COUNT: cannot be combined with UNTIL",
      ["FREQ=DAILY;UNTIL=2026"] = "UNTIL: '2026' is not a date",
      ["FREQ=DAILY;UNTIL=20260230"] = "UNTIL: day 30 does not exist",
      ["FREQ=DAILY;UNTIL=20261301"] = "UNTIL: month 13 is out of range",
      ["FREQ=DAILY;UNTIL=20260101T250000Z"] = "UNTIL: time 250000 is out of range",
      ["FREQ=DAILY;UNTIL=20260101T1200"] = "UNTIL: bad time part",
      ["FREQ=DAILY;BYSECOND=60"] = "BYSECOND: 60 is out of range",
      ["FREQ=DAILY;BYMINUTE=60"] = "BYMINUTE: 60 is out of range",
      ["FREQ=DAILY;BYHOUR=24"] = "BYHOUR: 24 is out of range",
      ["FREQ=DAILY;BYHOUR=9,,10"] = "BYHOUR: empty item",
      ["FREQ=WEEKLY;BYDAY=XX"] = "BYDAY: 'XX' is not a weekday",
      ["FREQ=MONTHLY;BYDAY=0MO"] = "BYDAY: ordinal in '0MO'",
      ["FREQ=MONTHLY;BYDAY=+MO"] = "BYDAY: '+MO' has a sign but no number",
      ["FREQ=MONTHLY;BYDAY=6MO"] = "BYDAY: a month has at most 5",
      ["FREQ=WEEKLY;BYDAY=2MO"] = "BYDAY: ordinal day '2MO' needs FREQ=MONTHLY",
      ["FREQ=YEARLY;BYWEEKNO=1;BYDAY=1MO"] = "BYDAY: ordinal day '1MO' cannot be combined with BYWEEKNO",
      ["FREQ=MONTHLY;BYMONTHDAY=0"] = "BYMONTHDAY: 0 is not allowed",
      ["FREQ=MONTHLY;BYMONTHDAY=32"] = "BYMONTHDAY: 32 is out of range",
      ["FREQ=WEEKLY;BYMONTHDAY=1"] = "BYMONTHDAY: not allowed with FREQ=WEEKLY",
      ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30,31"] = "BYMONTHDAY: day 30 never occurs in February",
      ["FREQ=YEARLY;BYYEARDAY=367"] = "BYYEARDAY: 367 is out of range",
      ["FREQ=MONTHLY;BYYEARDAY=1"] = "BYYEARDAY: not allowed with FREQ=MONTHLY",
      ["FREQ=YEARLY;BYWEEKNO=54"] = "BYWEEKNO: 54 is out of range",
      ["FREQ=MONTHLY;BYWEEKNO=1"] = "BYWEEKNO: only allowed with FREQ=YEARLY",
      ["FREQ=YEARLY;BYMONTH=13"] = "BYMONTH: 13 is out of range",
      ["FREQ=DAILY;BYSETPOS=1"] = "BYSETPOS: needs another BY... part",
      ["FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0"] = "BYSETPOS: 0 is not allowed",
      ["FREQ=DAILY;WKST=XY"] = "WKST: 'XY' is not a weekday",
      ["FREQ=DAILY;FOO=1"] = "FOO: unknown rule part",
      ["FREQ=DAILY;FREQ=WEEKLY"] = "FREQ: given more than once",
      ["FREQ=DAILY;BYHOUR="] = "BYHOUR: empty value",
      ["FREQ=DAILY;;COUNT=1"] = "malformed part ''",
      ["FREQ"] = "malformed part 'FREQ'",
    }
    for rule, want in pairs(bad) do
      local ok, err = recurrence.validate(rule)
      assert.is_nil(ok, rule)
      assert.matches(want, err, 1, true)
    end
  end)

  it("raises on a non-string", function()
    assert.has_error(function() recurrence.parse(42) end)
    assert.has_error(function() recurrence.expand("FREQ=DAILY", "now", B, 1) end)
    assert.has_error(function() recurrence.expand("FREQ=DAILY", 0, B) end)
  end)

  it("returns nil, err from expand for a bad rule or zone", function()
    local r, err = recurrence.expand("FREQ=NEVER", 0, B, 3)
    assert.is_nil(r)
    assert.matches("FREQ", err)
    r, err = recurrence.next_after("FREQ=DAILY", 0, "Mars/Base", 0)
    assert.is_nil(r)
    assert.equal("unknown time zone 'Mars/Base'", err)
  end)
end)

describe("rrule expansion traps", function()
  it("Jan 31 monthly skips months without a 31st", function()
    assert.same({ "2026-01-31T09:00:00+01:00", "2026-03-31T09:00:00+02:00", "2026-05-31T09:00:00+02:00",
      "2026-07-31T09:00:00+02:00", "2026-08-31T09:00:00+02:00" }, occ("FREQ=MONTHLY", B, { 2026, 1, 31 }, 5))
  end)
  it("BYMONTHDAY=-1 gives the last day of each month", function()
    assert.same({ "2024-01-31T09:00:00+01:00", "2024-02-29T09:00:00+01:00", "2024-03-31T09:00:00+02:00",
      "2024-04-30T09:00:00+02:00" }, occ("FREQ=MONTHLY;BYMONTHDAY=-1", B, { 2024, 1, 1 }, 4))
  end)
  it("Feb 29 yearly happens only in leap years (and not in 2100)", function()
    assert.same({ "2024-02-29T09:00:00+01:00", "2028-02-29T09:00:00+01:00", "2032-02-29T09:00:00+01:00" },
      occ("FREQ=YEARLY", B, { 2024, 2, 29 }, 3))
    local list = occ("FREQ=YEARLY;INTERVAL=4", "UTC", { 2096, 2, 29 }, 2)
    assert.same({ "2096-02-29T09:00:00Z", "2104-02-29T09:00:00Z" }, list)
  end)
  it("last Friday of the month", function()
    assert.same({ "2026-01-30T09:00:00+01:00", "2026-02-27T09:00:00+01:00", "2026-03-27T09:00:00+01:00" },
      occ("FREQ=MONTHLY;BYDAY=-1FR", B, { 2026, 1, 1 }, 3))
  end)
  it("fifth Monday only in months that have one", function()
    assert.same({ "2026-03-30T09:00:00+02:00", "2026-06-29T09:00:00+02:00", "2026-08-31T09:00:00+02:00",
      "2026-11-30T09:00:00+01:00" }, occ("FREQ=MONTHLY;BYDAY=5MO", B, { 2026, 1, 1 }, 4))
  end)
  it("BYSETPOS=-1 over weekdays is the last weekday of the month", function()
    assert.same({ "2026-01-30T09:00:00+01:00", "2026-02-27T09:00:00+01:00", "2026-03-31T09:00:00+02:00",
      "2026-04-30T09:00:00+02:00", "2026-05-29T09:00:00+02:00" },
      occ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", B, { 2026, 1, 1 }, 5))
  end)
  it("mixing plain and ordinal BYDAY is the union (RFC 5545)", function()
    assert.same({ "2026-01-05T09:00:00+01:00", "2026-01-06T09:00:00+01:00", "2026-01-12T09:00:00+01:00" },
      occ("FREQ=MONTHLY;BYDAY=MO,1TU", B, { 2026, 1, 1 }, 3))
  end)
  it("ISO week 53 (not dateutil's idea of it)", function()
    -- 2020 and 2026 have 53 ISO weeks; 2022-01-01 is in 2021-W52.
    assert.same({ "2021-01-02T09:00:00Z", "2027-01-02T09:00:00Z" },
      occ("FREQ=YEARLY;BYWEEKNO=53;BYDAY=SA", "UTC", { 2020, 1, 1 }, 2))
  end)

  describe("DST", function()
    it("spring forward keeps 09:00 local in three zones", function()
      assert.same({ "2026-03-28T09:00:00+01:00", "2026-03-29T09:00:00+02:00" },
        occ("FREQ=DAILY", B, { 2026, 3, 28 }, 2))
      assert.same({ "2026-03-07T09:00:00-05:00", "2026-03-08T09:00:00-04:00" },
        occ("FREQ=DAILY", NY, { 2026, 3, 7 }, 2))
      assert.same({ "2026-10-03T09:00:00+10:00", "2026-10-04T09:00:00+11:00" },
        occ("FREQ=DAILY", SYD, { 2026, 10, 3 }, 2))
    end)
    it("a time inside the spring-forward gap moves forward by the gap", function()
      assert.same({ "2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00" },
        occ("FREQ=DAILY", B, { 2026, 3, 28, 2, 30 }, 3))
      assert.same({ "2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00" },
        occ("FREQ=DAILY", NY, { 2026, 3, 7, 2, 30 }, 3))
      assert.same({ "2026-10-03T02:30:00+10:00", "2026-10-04T03:30:00+11:00", "2026-10-05T02:30:00+11:00" },
        occ("FREQ=DAILY", SYD, { 2026, 10, 3, 2, 30 }, 3))
    end)
    it("an ambiguous fall-back time takes the first instant", function()
      assert.same({ "2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00" },
        occ("FREQ=DAILY", B, { 2026, 10, 24, 2, 30 }, 3))
      assert.same({ "2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00" },
        occ("FREQ=DAILY", NY, { 2026, 10, 31, 1, 30 }, 3))
      assert.same({ "2026-04-04T02:30:00+11:00", "2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00" },
        occ("FREQ=DAILY", SYD, { 2026, 4, 4, 2, 30 }, 3))
    end)
    it("sub-daily rules count wall-clock hours and drop gap duplicates", function()
      assert.same({ "2026-03-29T01:00:00+01:00", "2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00", "2026-03-29T04:00:00+02:00" },
        occ("FREQ=MINUTELY;INTERVAL=30", B, { 2026, 3, 29, 1, 0 }, 5))
      assert.same({ "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00" },
        occ("FREQ=HOURLY", B, { 2026, 10, 25, 1, 0 }, 3))
    end)
  end)

  it("COUNT counts from DTSTART", function()
    assert.same({ "2026-01-01T09:00:00+01:00", "2026-01-08T09:00:00+01:00", "2026-01-15T09:00:00+01:00" },
      occ("FREQ=WEEKLY;COUNT=3", B, { 2026, 1, 1 }, 10))
    local t0 = tz.from_local(2026, 1, 1, 9, 0, 0, B)
    assert.is_nil(recurrence.next_after("FREQ=DAILY;COUNT=3", t0, B, t0 + 2 * 86400))
    assert.equal(t0 + 2 * 86400, recurrence.next_after("FREQ=DAILY;COUNT=3", t0, B, t0 + 2 * 86400, true))
  end)
  it("UNTIL is inclusive in all three forms", function()
    local want = { "2026-01-01T09:00:00+01:00", "2026-01-02T09:00:00+01:00", "2026-01-03T09:00:00+01:00" }
    assert.same(want, occ("FREQ=DAILY;UNTIL=20260103T080000Z", B, { 2026, 1, 1 }, 10))
    assert.same(want, occ("FREQ=DAILY;UNTIL=20260103T090000", B, { 2026, 1, 1 }, 10))
    assert.same(want, occ("FREQ=DAILY;UNTIL=20260103", B, { 2026, 1, 1 }, 10))
    assert.same({}, occ("FREQ=DAILY;UNTIL=20251231", B, { 2026, 1, 1 }, 10))
  end)
  it("next_after skips ahead and agrees with a full expansion", function()
    local t0 = tz.from_local(2020, 1, 31, 9, 0, 0, B)
    for _, rule in ipairs { "FREQ=DAILY;INTERVAL=3", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
      "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "FREQ=HOURLY;INTERVAL=7",
      "FREQ=MINUTELY;INTERVAL=997;BYHOUR=9,10" } do
      local all = recurrence.expand(rule, t0, B, 400)
      for i = 2, #all, 37 do
        assert.equal(all[i], recurrence.next_after(rule, t0, B, all[i - 1]), rule)
        assert.equal(all[i], recurrence.next_after(rule, t0, B, all[i] - 1), rule)
        assert.equal(all[i], recurrence.next_after(rule, t0, B, all[i], true), rule)
      end
    end
  end)
  it("a rule with no occurrence for 400 years ends instead of looping", function()
    local t0 = tz.from_local(2026, 1, 1, 9, 0, 0, B)
    assert.same({}, recurrence.expand("FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1", t0, B, 3))
    assert.same({}, recurrence.expand("FREQ=HOURLY;INTERVAL=48;BYHOUR=10", t0, B, 3))
  end)
end)

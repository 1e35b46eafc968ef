-- The tz primitive: zone validation, instant <-> wall-clock conversion with
-- the gap/fold policy, RFC 3339 formatting and parsing.
local tz = require "tz"

local B, NY, SYD, KOL = "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"

describe("tz.valid", function()
  it("accepts IANA zone names", function()
    for _, z in ipairs { B, NY, SYD, KOL, "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires" } do
      assert.is_true(tz.valid(z), z)
    end
  end)
  it("rejects names glibc would silently treat as UTC, and path tricks", function()
    for _, z in ipairs { "", "Nowhere/City", "europe/berlin ", "../etc/passwd", "/etc/localtime",
      "/usr/share/zoneinfo/UTC", "Europe/../UTC", "Europe/./Berlin", "Europe//Berlin",
      "Europe/", "zone.tab", "tzdata.zi", "Europe", "UTC\0", "right/UTC", "CET;rm" } do
      assert.is_false(tz.valid(z), z)
    end
  end)
  it("raises on a non-string", function()
    assert.has_error(function() tz.valid(nil) end)
  end)
end)

describe("tz.to_local", function()
  it("gives fields, weekday (1 = Sunday) and offset", function()
    -- 2026-03-29T07:00:00Z is 09:00 CEST on a Sunday
    assert.same({ 2026, 3, 29, 9, 0, 0, 1, 7200 }, { tz.to_local(1774767600, B) })
    assert.same({ 1970, 1, 1, 5, 30, 0, 5, 19800 }, { tz.to_local(0, KOL) })
    assert.same({ 1969, 12, 31, 23, 59, 59, 4, 0 }, { tz.to_local(-1, "UTC") })
  end)
  it("raises on an invalid zone or a non-integer time", function()
    assert.has_error(function() tz.to_local(0, "Mars/Olympus") end, "invalid time zone 'Mars/Olympus'")
    assert.has_error(function() tz.to_local(1.5, B) end)
    assert.has_error(function() tz.to_local(0) end)
  end)
end)

describe("tz.from_local", function()
  local function at(y, mo, d, h, mi, z)
    return tz.format(tz.from_local(y, mo, d, h, mi, 0, z), z)
  end
  it("round-trips ordinary times", function()
    local t = tz.from_local(2026, 7, 1, 12, 0, 0, B)
    assert.same({ 2026, 7, 1, 12, 0, 0 }, { table.unpack({ tz.to_local(t, B) }, 1, 6) })
  end)
  it("moves a time in a spring-forward gap forward by the gap", function()
    assert.equal("2026-03-29T03:30:00+02:00", at(2026, 3, 29, 2, 30, B))
    assert.equal("2026-03-08T03:30:00-04:00", at(2026, 3, 8, 2, 30, NY))
    assert.equal("2026-10-04T03:30:00+11:00", at(2026, 10, 4, 2, 30, SYD))
    assert.equal("2026-03-29T03:00:00+02:00", at(2026, 3, 29, 2, 0, B))
  end)
  it("takes the first instant of an ambiguous fall-back time", function()
    assert.equal("2026-10-25T02:30:00+02:00", at(2026, 10, 25, 2, 30, B))
    assert.equal("2026-11-01T01:30:00-04:00", at(2026, 11, 1, 1, 30, NY))
    assert.equal("2026-04-05T02:30:00+11:00", at(2026, 4, 5, 2, 30, SYD))
    -- and the hour after is the second one
    local t = tz.from_local(2026, 10, 25, 2, 30, 0, B)
    assert.equal("2026-10-25T02:30:00+01:00", tz.format(t + 3600, B))
  end)
  it("normalizes out-of-range fields like mktime", function()
    assert.equal("2027-01-01T00:00:00+05:30", at(2026, 13, 1, 0, 0, KOL))
    assert.equal("2026-03-01T00:00:00+01:00", at(2026, 2, 29, 0, 0, B))
    assert.equal("2025-12-31T23:00:00+01:00", at(2026, 1, 1, -1, 0, B))
    assert.equal(tz.from_local(2026, 1, 2, 0, 0, 0, "UTC"), tz.from_local(2026, 1, 1, 0, 0, 86400, "UTC"))
  end)
  it("raises on an invalid zone", function()
    assert.has_error(function() tz.from_local(2026, 1, 1, 0, 0, 0, "../UTC") end)
  end)
end)

describe("tz.from_wall / tz.to_wall", function()
  it("are inverse outside gaps", function()
    for _, z in ipairs { B, NY, SYD, KOL, "UTC" } do
      local t = 1774767600
      local w = tz.to_wall(t, z)
      assert.equal(t, tz.from_wall(w, z))
    end
  end)
end)

describe("tz.format", function()
  it("writes RFC 3339 with the local offset", function()
    assert.equal("2026-03-29T09:00:00+02:00", tz.format(1774767600, B))
    assert.equal("2026-03-29T03:00:00-04:00", tz.format(1774767600, NY))
    assert.equal("2026-03-29T12:30:00+05:30", tz.format(1774767600, KOL))
    assert.equal("2026-03-29T07:00:00Z", tz.format(1774767600, "UTC"))
  end)
  it("keeps the instant for historical offsets with seconds", function()
    local s = tz.format(-2500000000, B) -- LMT +00:53:28
    assert.equal(-2500000000 // 60, tz.parse_rfc3339(s) // 60)
  end)
end)

describe("tz.parse_rfc3339", function()
  it("accepts Z, offsets, fractions and lower-case separators", function()
    assert.equal(1774767600, tz.parse_rfc3339("2026-03-29T09:00:00+02:00"))
    assert.equal(1774767600, tz.parse_rfc3339("2026-03-29T07:00:00Z"))
    assert.equal(1774767600, tz.parse_rfc3339("2026-03-29t07:00:00z"))
    assert.equal(1774767600, tz.parse_rfc3339("2026-03-29 02:30:00-04:30"))
    local t, frac = tz.parse_rfc3339("2026-03-29T07:00:00.250Z")
    assert.equal(1774767600, t)
    assert.near(0.25, frac, 1e-9)
    assert.equal(0, select(2, tz.parse_rfc3339("2026-03-29T07:00:00Z")))
    assert.equal(951782400, tz.parse_rfc3339("2000-02-29T00:00:00Z"))
  end)
  it("rejects garbage precisely", function()
    local cases = {
      ["2026-3-29T07:00:00Z"] = "bad month",
      ["2026-13-01T07:00:00Z"] = "bad month",
      ["2026-02-29T07:00:00Z"] = "bad day",
      ["2026-03-29"] = "expected 'T' after date",
      ["2026-03-29T24:00:00Z"] = "bad hour",
      ["2026-03-29T07:60:00Z"] = "bad minute",
      ["2026-03-29T07:00:00"] = "expected 'Z' or offset",
      ["2026-03-29T07:00:00+0200"] = "expected ':' in offset",
      ["2026-03-29T07:00:00.Z"] = "expected digits after '.'",
      ["2026-03-29T07:00:00Zjunk"] = "trailing characters",
      ["yesterday"] = "expected 4-digit year",
      [""] = "expected 4-digit year",
    }
    for s, want in pairs(cases) do
      local t, err = tz.parse_rfc3339(s)
      assert.is_nil(t, s)
      assert.matches(want, err, 1, true)
    end
  end)
end)

-- English phrases into rules.
local recurrence = require "recurrence"

describe("recurrence.parse_phrase", function()
  local cases = {
    ["every day"] = "FREQ=DAILY",
    ["Daily"] = "FREQ=DAILY",
    ["every weekday"] = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    ["every other week"] = "FREQ=WEEKLY;INTERVAL=2",
    ["every other day"] = "FREQ=DAILY;INTERVAL=2",
    ["every 2 weeks on mon and thu"] = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
    ["every two weeks on Monday & Thursday"] = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
    ["every monday"] = "FREQ=WEEKLY;BYDAY=MO",
    ["every mon, wed and fri"] = "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    ["every month on the 1st"] = "FREQ=MONTHLY;BYMONTHDAY=1",
    ["every month on the 1st and 15th"] = "FREQ=MONTHLY;BYMONTHDAY=1,15",
    ["every month on the last day"] = "FREQ=MONTHLY;BYMONTHDAY=-1",
    ["every last friday"] = "FREQ=MONTHLY;BYDAY=-1FR",
    ["the last friday of every month"] = "FREQ=MONTHLY;BYDAY=-1FR",
    ["every 3rd wednesday"] = "FREQ=MONTHLY;BYDAY=3WE",
    ["every first monday of the month"] = "FREQ=MONTHLY;BYDAY=1MO",
    ["every last weekday of the month"] = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    ["every 2 months on the last friday"] = "FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR",
    ["every year on 25 dec"] = "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
    ["every year on December 25th"] = "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
    ["every year in march and april"] = "FREQ=YEARLY;BYMONTH=3,4",
    ["every 3 hours"] = "FREQ=HOURLY;INTERVAL=3",
    ["hourly"] = "FREQ=HOURLY",
    ["every 30 minutes"] = "FREQ=MINUTELY;INTERVAL=30",
    ["every day at 9:30"] = "FREQ=DAILY;BYHOUR=9;BYMINUTE=30",
    ["every day at 9am and 5pm"] = "FREQ=DAILY;BYHOUR=9,17;BYMINUTE=0",
    ["every day until 2026-12-31"] = "FREQ=DAILY;UNTIL=20261231",
    ["every weekday until dec 31 2026"] = "FREQ=WEEKLY;UNTIL=20261231;BYDAY=MO,TU,WE,TH,FR",
    ["every week until 31 December, 2026"] = "FREQ=WEEKLY;UNTIL=20261231",
    ["every week for 5 times"] = "FREQ=WEEKLY;COUNT=5",
    ["every tuesday 3 times"] = "FREQ=WEEKLY;COUNT=3;BYDAY=TU",
    -- a day of the month first, without "every" (issue 19)
    ["last Friday of the month"] = "FREQ=MONTHLY;BYDAY=-1FR",
    ["monthly on the last friday"] = "FREQ=MONTHLY;BYDAY=-1FR",
    ["on the last friday of every month"] = "FREQ=MONTHLY;BYDAY=-1FR",
    ["first monday of the month at 9:00"] = "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0",
    ["last day of the month"] = "FREQ=MONTHLY;BYMONTHDAY=-1",
    ["last weekday of the month"] = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    ["2nd and 4th tuesdays of the month"] = "FREQ=MONTHLY;BYDAY=2TU,4TU",
    ["every month on the first and third monday"] = "FREQ=MONTHLY;BYDAY=1MO,3MO",
    ["the 1st and 15th of every month"] = "FREQ=MONTHLY;BYMONTHDAY=1,15",
    ["the 4th thursday of november"] = "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
    ["every year on the last friday of november"] = "FREQ=YEARLY;BYMONTH=11;BYDAY=-1FR",
    ["the 25th of december"] = "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
  }
  for text, want in pairs(cases) do
    it(text, function()
      assert.equal(want, recurrence.parse_phrase(text))
    end)
  end

  it("round-trips through describe", function()
    assert.equal("every 2 weeks on Monday and Thursday",
      recurrence.describe(recurrence.parse_phrase("every 2 weeks on mon and thu")))
  end)

  it("returns nil and a message for what it cannot read", function()
    local bad = {
      [""] = "empty phrase",
      ["every blah"] = "cannot understand 'blah'",
      ["sometimes"] = "expected a phrase starting with 'every'",
      ["last blah of the month"] = "expected a phrase starting with 'every'",
      ["last friday of the week"] = "expected 'month' or a month's name after 'of'",
      ["every day until soon"] = "cannot read the date after 'until'",
      ["every 2 weeks on the 5th"] = "days of the month need 'every month'",
      ["every day until 2026-12-31 for 3 times"] = "either 'until' or 'for N times'",
      ["every day at 25:00"] = "out of range",
      ["every day until 2026-02-30"] = "UNTIL: day 30 does not exist",
    }
    for text, want in pairs(bad) do
      local r, err = recurrence.parse_phrase(text)
      assert.is_nil(r, text)
      assert.matches(want, err, 1, true)
    end
    assert.has_error(function() recurrence.parse_phrase(nil) end)
  end)
end)

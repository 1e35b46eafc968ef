-- English descriptions of rules.
local recurrence = require "recurrence"

describe("recurrence.describe", function()
  local cases = {
    ["FREQ=DAILY"] = "every day",
    ["FREQ=DAILY;INTERVAL=3"] = "every 3 days",
    ["FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"] = "every weekday",
    ["FREQ=DAILY;BYDAY=FR,TH,WE,TU,MO"] = "every weekday",
    ["FREQ=WEEKLY;BYDAY=SA,SU"] = "every weekend",
    ["FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"] = "every 2 weeks on Monday and Thursday",
    ["FREQ=WEEKLY;BYDAY=TH,MO"] = "every Monday and Thursday",
    ["FREQ=WEEKLY"] = "every week",
    ["FREQ=MONTHLY;BYDAY=-1FR"] = "on the last Friday of every month",
    ["FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR"] = "on the last Friday of every 2 months",
    ["FREQ=MONTHLY;BYDAY=3WE"] = "on the third Wednesday of every month",
    ["FREQ=MONTHLY;BYMONTHDAY=1"] = "on the 1st of every month",
    ["FREQ=MONTHLY;BYMONTHDAY=1,15"] = "on the 1st and 15th of every month",
    ["FREQ=MONTHLY;BYMONTHDAY=-1"] = "on the last day of every month",
    ["FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"] = "on the last weekday of every month",
    ["FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR"] = "every month on the 13th, if a Friday",
    ["FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25"] = "every year on December 25",
    ["FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO"] = "on the last Monday of May every year",
    ["FREQ=YEARLY"] = "every year",
    ["FREQ=HOURLY;INTERVAL=3"] = "every 3 hours",
    ["FREQ=HOURLY"] = "every hour",
    ["FREQ=MINUTELY;INTERVAL=15"] = "every 15 minutes",
    ["FREQ=DAILY;BYHOUR=9,17;BYMINUTE=30;COUNT=5"] = "every day at 9:30 and 17:30, 5 times",
    ["FREQ=DAILY;UNTIL=20261231"] = "every day, until 2026-12-31",
    ["FREQ=DAILY;UNTIL=20261231T230000Z"] = "every day, until 2026-12-31 23:00 UTC",
    ["FREQ=DAILY;BYMONTH=6,7,8"] = "every day in June, July and August",
    ["FREQ=DAILY;COUNT=1"] = "every day, once",
  }
  for rule, want in pairs(cases) do
    it(rule, function()
      assert.equal(want, recurrence.describe(rule))
    end)
  end
  it("accepts a parsed rule", function()
    assert.equal("every day", recurrence.describe(recurrence.parse("FREQ=DAILY")))
  end)
  it("returns nil, err for an invalid rule and raises on a wrong type", function()
    local d, err = recurrence.describe("FREQ=WHENEVER")
    assert.is_nil(d)
    assert.matches("FREQ", err)
    assert.has_error(function() recurrence.describe(42) end)
  end)
  it("describes every rule the differential generator can make without failing", function()
    for _, rule in ipairs { "FREQ=YEARLY;BYWEEKNO=1,-1;BYDAY=MO", "FREQ=YEARLY;BYYEARDAY=1,-1",
      "FREQ=HOURLY;BYMINUTE=5,35", "FREQ=MINUTELY;BYSECOND=1;BYSETPOS=1;WKST=SU",
      "FREQ=YEARLY;BYMONTH=1,2;BYDAY=1MO,-2FR;BYHOUR=0" } do
      assert.is_string(recurrence.describe(rule))
    end
  end)
end)

--- Recurrence benchmark: occurrences expanded per second for a mix of rules.
-- Run as `build/todo-host script bench/recurrence_bench.lua` (or with lua5.4
-- when a `tz` module is on package.cpath). Prints one line per rule and a total.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local tz = require "tz"
local recurrence = require "recurrence"

local ZONE = "Europe/Berlin"
local DTSTART = tz.from_local(2026, 1, 31, 9, 0, 0, ZONE)
local RULES = {
  "FREQ=DAILY",
  "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
  "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
  "FREQ=MONTHLY",
  "FREQ=MONTHLY;BYMONTHDAY=-1",
  "FREQ=MONTHLY;BYDAY=-1FR",
  "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
  "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
  "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
  "FREQ=HOURLY;INTERVAL=3",
  "FREQ=MINUTELY;INTERVAL=15;BYHOUR=9,10,11,12,13,14,15,16,17",
}
local PER_CALL = 1000     -- occurrences per expand call
local MIN_SECONDS = 0.3   -- time per rule

local clock = os.clock
local total_n, total_t = 0, 0
for _, rule in ipairs(RULES) do
  local n, t0 = 0, clock()
  repeat
    local list = assert(recurrence.expand(rule, DTSTART, ZONE, PER_CALL))
    n = n + #list
  until clock() - t0 >= MIN_SECONDS
  local dt = clock() - t0
  total_n, total_t = total_n + n, total_t + dt
  print(string.format("%-50s %10.0f occurrences/s", rule, n / dt))
end

-- next_after from "now" (the recurring-task service's call), far from DTSTART.
do
  local n, t0 = 0, clock()
  local after = tz.from_local(2030, 6, 15, 12, 0, 0, ZONE)
  repeat
    for _, rule in ipairs(RULES) do
      assert(recurrence.next_after(rule, DTSTART, ZONE, after))
      n = n + 1
    end
  until clock() - t0 >= MIN_SECONDS
  print(string.format("%-50s %10.0f calls/s", "next_after (mix, 4.5 years after DTSTART)", n / (clock() - t0)))
end

print(string.format("%-50s %10.0f occurrences/s", "TOTAL expand mix", total_n / total_t))

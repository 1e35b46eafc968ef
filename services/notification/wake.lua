--- Sleeping until an instant, woken early: the waits of the scheduler and of the
-- delivery worker. A `waker` is a host timer (a background task in `task.wait`, which
-- also ends when the bundle stops) racing a `task.event` that `poke` sets. Pokes are
-- counted, so one that lands while the sleeper is still deciding how long to sleep is
-- not lost: `sleep_until(deadline, seen)` returns at once when the count moved past
-- `seen`.
-- @module notification.wake

local task = require "task"
local clock = require "notification.clock"

local M = {}

--- A new waker.
-- @treturn table with `poke(at)`, `pokes()`, `sleep_until(deadline, seen)`
function M.new()
  local w = { count = 0 }

  --- Wake the sleeper if it sleeps past `at` (nil: wake it anyway).
  function w.poke(at)
    w.count = w.count + 1
    if w.event and (at == nil or at < w.until_at) then w.event:set() end
  end

  --- The number of pokes so far (take it before looking for work).
  function w.pokes() return w.count end

  --- Sleep until `deadline` (clock seconds), a poke, or the bundle stopping.
  function w.sleep_until(deadline, seen)
    if seen and w.count ~= seen then return end
    local secs = deadline - clock.now()
    if secs <= 0 then return end
    local ev = task.event()
    w.event, w.until_at = ev, deadline
    task.spawn(function()
      task.wait(secs)
      ev:set()
    end)
    ev:wait()
    if w.event == ev then w.event = nil end
  end

  return w
end

return M

--- Waking the bus's background pumps: one LISTEN connection per Lua state, shared
-- by every consumer pump and the Dapr relay of that state, and the wait that ends
-- on a notification, a timeout or the state stopping. Publishers NOTIFY on commit
-- (bus.outbox); without a listener (LISTEN failed), pumps poll every 50 ms.
--
-- A pump takes the listener's generation *before* it looks for work and waits for a
-- newer one, so a notification that lands while it works is never lost.
-- @module bus.wakeup
local core = require "pg.core"
local task = require "task"
local log = require "log"
local outbox = require "bus.outbox"

local M = {}

local listener, opening, retry_at = nil, false, 0

--- The state's LISTEN connection, opened on first use; nil while none can be opened
-- (retried every 5 s).
-- @return a `pg.core` listener or nil
function M.listener()
  if listener then return listener end
  if not core.listener or opening or os.time() < retry_at then return nil end
  opening = true
  local conn, err = core.acquire()
  if conn then
    local ok
    ok, err = conn:query("LISTEN " .. outbox.CHANNEL)
    if ok then
      conn:rows()
      listener = core.listener(conn)
    else
      conn:release()
    end
  end
  if not listener then
    log.warn("bus: cannot LISTEN, polling instead", { error = tostring(err) })
    retry_at = os.time() + 5
  end
  opening = false
  return listener
end

--- The notification count seen so far (0 without a listener).
-- @param l a listener or nil
-- @treturn integer
function M.generation(l)
  return l and l:generation() or 0
end

--- Wait until a notification newer than `gen` arrives, `timeout` seconds pass or the
-- state stops.
-- @param l the listener (or nil: a short poll)
-- @tparam integer gen from `generation`, taken before looking for work
-- @tparam number timeout seconds
-- @treturn boolean whether the state is stopping
function M.wait(l, gen, timeout)
  if not l then
    return task.wait(math.min(timeout, tonumber(os.getenv("BUS_POLL_FALLBACK_SECONDS") or "") or 0.05))
  end
  local got, err = l:wait(timeout, gen)
  if got == nil then
    log.warn("bus: LISTEN connection lost", { error = tostring(err) })
    if listener == l then listener = nil end
    l:close()
    task.wait(0.1)
  end
  return task.stopping()
end

--- Close the state's listener (the last pump of a draining relay); a later
-- `listener()` opens a new one.
function M.close()
  if listener then
    listener:close()
    listener = nil
  end
end

return M

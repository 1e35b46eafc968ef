--- Deleting an occurrence of a series (issue 5), for tasks.repo.delete:
--   scope=occurrence (default)  this task only. An open occurrence is skipped: the series
--                               goes on with the next occurrence, as if this one had been
--                               done now (tasks.spawn, reason "skipped"). A one-off task
--                               is simply deleted.
--   scope=series                this task and every open occurrence of its series; the
--                               series stops (completed occurrences stay, as history, and
--                               none of them spawns again).
-- Every statement is scoped to the user. The change and its `task.deleted` events commit
-- together (tasks.events.record). Internal to lua/tasks: callers use tasks.repo.delete.
-- @module tasks.series_delete

local pg = require "pg"
local row = require "tasks.row"
local events = require "tasks.events"
local spawn = require "tasks.spawn"

local M = {}

--- The scopes of a delete.
M.SCOPES = { occurrence = true, series = true }

--- Hook for `tasks.store.delete` with scope=occurrence, run in its transaction after the
-- row is gone: an open occurrence of a series is skipped (the next one is created).
-- @param tx
-- @tparam string user
-- @tparam table deleted the deleted row (`tasks.row.COLUMNS`)
-- @return true, or nil, message
function M.skip(tx, user, deleted)
  if deleted.completed == true then return true end
  local rec = deleted.recurrence
  if type(rec) ~= "table" or type(rec.rule) ~= "string" then return true end
  local task, why, state = spawn.next(tx, user, deleted, "skipped")
  if task == nil then return nil, why, state end
  return true
end

--- Delete a task and the open occurrences of its series, and stop the series.
-- @tparam string user
-- @tparam string id
-- @tparam[opt] table versions from If-Match (they apply to the task named)
-- @return `{task = t, deleted = n}`, `{missing = true}`, `{conflict = true, version = n}`,
--   or nil, err, sqlstate
function M.series(user, id, versions)
  local result, err, state
  local ok, tx_err, tx_state = pg.tx(function(tx)
    local rows
    rows, err, state = tx:query("SELECT " .. row.COLUMNS
      .. " FROM tasks WHERE id = $1::uuid AND user_id = $2 FOR UPDATE", id, user)
    if not rows then return nil, err end
    local target = rows[1]
    if not target then
      result = { missing = true }
      return true
    end
    if versions then
      local match = false
      for _, v in ipairs(versions) do
        if v == target.version then match = true end
      end
      if not match then
        result = { conflict = true, version = target.version }
        return true
      end
    end
    local sid = spawn.series_of(target)
    local stopped, serr = spawn.stop(tx, user, sid)
    if not stopped then
      err = serr
      return nil, serr
    end
    rows, err, state = tx:query("DELETE FROM tasks WHERE user_id = $1 AND (id = $2::uuid OR "
      .. "((series_id = $3::uuid OR id = $3::uuid) AND NOT completed)) RETURNING " .. row.COLUMNS,
      user, id, sid)
    if not rows then return nil, err end
    table.sort(rows, function(a, b) return a.id < b.id end)
    local named
    for _, r in ipairs(rows) do
      local task = row.to_task(r)
      if r.id == id then named = task end
      local done, perr = events.record(tx, user, "deleted", task)
      if not done then
        err = perr
        return nil, perr
      end
    end
    result = { task = named or row.to_task(target), deleted = #rows }
    return true
  end)
  if ok and result then return result end
  return nil, err or tx_err or "transaction failed", state or tx_state
end

return M

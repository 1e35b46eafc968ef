--- Task history (the origin design's audit service): the "history" consumer of
-- `task-events` that records every change, the reads of it (a task's changes, a user's
-- recent activity) and undo. Every query is scoped to the user. Owns the task_history
-- table (migration 002 of services/api). The HTTP routes are services/api's
-- (api.tasks.history). Failures: `nil, message, code[, detail]` as tasks.repo.
-- @module tasks.history

local pg = require "pg"
local json = require "json"
local store = require "tasks.store"
local task_events = require "tasks.events"
local repo = require "tasks.repo"
local schema = require "tasks.schema"
local series = require "tasks.series"

local M = {}

local NULL = pg.null
M.LIMIT_DEFAULT, M.LIMIT_MAX = 50, 200

--- The consumer of `task-events` (group "history"): one row per change. The state before
-- the change is the previous row of the same task (events of one user arrive in order).
-- @tparam table event the CloudEvent
-- @param tx the delivery's transaction
function M.on_event(event, tx)
  local d = event.data
  if type(d) ~= "table" or type(d.task_id) ~= "string" or type(d.task_data) ~= "table" then
    error("history: not a task event: " .. tostring(event.type))
  end
  -- One statement: the state before is read by a sub-select (none for a creation).
  local ok, err = tx:query([[INSERT INTO task_history
      (event_id, user_id, task_id, kind, version, changed, task, before, at)
    VALUES ($1::uuid, $2, $3::uuid, $4, $5::integer, $6::text[], $7::jsonb,
            CASE WHEN $4 <> 'created' THEN (SELECT h.task FROM task_history h
                   WHERE h.user_id = $2 AND h.task_id = $3::uuid ORDER BY h.id DESC LIMIT 1) END,
            $8::timestamptz)
    ON CONFLICT (event_id) DO NOTHING]], event.id, d.user_id, d.task_id, d.event_type, d.version,
    pg.array(d.changed or {}), d.task_data, event.time)
  if not ok then return nil, err end
  return true
end

local INSERT_MANY = [[
  INSERT INTO task_history (event_id, user_id, task_id, kind, version, changed, task, before, at)
  SELECT (r->>'event_id')::uuid, r->>'user_id', (r->>'task_id')::uuid, r->>'kind', (r->>'version')::integer,
         ARRAY(SELECT jsonb_array_elements_text(r->'changed')), r->'task',
         CASE WHEN r ? 'before' THEN r->'before'
              WHEN r->>'kind' <> 'created' THEN (SELECT h.task FROM task_history h
                WHERE h.user_id = r->>'user_id' AND h.task_id = (r->>'task_id')::uuid ORDER BY h.id DESC LIMIT 1)
         END,
         (r->>'at')::timestamptz
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(r, n)
   ORDER BY a.n
  ON CONFLICT (event_id) DO NOTHING]]

--- The batch form of `on_event` (the subscription's `batch_handler`): the rows of several
-- events of one partition, in order, in one statement. The state before a change made
-- earlier in the same batch is that event's task (the statement cannot see its own rows).
-- @tparam table events CloudEvents, in partition order
-- @param tx the delivery's transaction
function M.on_events(events, tx)
  local rows, last = {}, {}
  for i, event in ipairs(events) do
    local d = event.data
    if type(d) ~= "table" or type(d.task_id) ~= "string" or type(d.task_data) ~= "table" then
      error("history: not a task event: " .. tostring(event.type))
    end
    local key = tostring(d.user_id) .. " " .. d.task_id
    local row = {
      event_id = event.id, user_id = d.user_id, task_id = d.task_id, kind = d.event_type,
      version = d.version, changed = json.array(d.changed or {}), task = d.task_data, at = event.time,
    }
    if last[key] ~= nil and d.event_type ~= "created" then row.before = last[key] end
    last[key] = d.task_data
    rows[i] = row
  end
  local ok, err = tx:query(INSERT_MANY, json.array(rows))
  if not ok then return nil, err end
  return true
end

local function entry(row)
  return {
    id = row.id, task_id = row.task_id, kind = row.kind, version = row.version,
    changed = json.array(row.changed or {}), actor = row.user_id, at = row.at,
    task = row.task, before = row.before, event_id = row.event_id,
  }
end

local ENTRY = [[id, event_id::text AS event_id, user_id, task_id::text AS task_id, kind, version, changed,
  task, before, at]]

local function entries(rows, err, state)
  if not rows then return repo.db_failure(err, state) end
  local items = {}
  for i, row in ipairs(rows) do items[i] = entry(row) end
  return json.array(items)
end

--- The changes of one of the user's tasks, newest first.
-- @tparam string user
-- @tparam string id the task id (a UUID)
-- @tparam integer limit
-- @return array of entries, or nil, message, code (`not_found` for a task with no
--   history that does not exist either)
function M.for_task(user, id, limit)
  local rows, err, state = pg.query("SELECT " .. ENTRY .. [[ FROM task_history
    WHERE user_id = $1 AND task_id = $2::uuid ORDER BY id DESC LIMIT $3]], user, id:lower(), limit)
  if rows and #rows == 0 then
    local task, gerr, code = repo.get(user, id)
    if not task then return nil, gerr, code end
  end
  return entries(rows, err, state)
end

--- The user's recent changes, newest first.
-- @tparam string user
-- @tparam integer limit
-- @return array of entries, or nil, message, code
function M.activity(user, limit)
  return entries(pg.query("SELECT " .. ENTRY .. [[ FROM task_history
    WHERE user_id = $1 ORDER BY id DESC LIMIT $2]], user, limit))
end

-- Writable fields holding their value in `task` (a task as the API shows it), for
-- store.update; completed_at follows completed.
local function fields_from(task, names)
  local f = {}
  for _, name in ipairs(names) do
    local v = task[name]
    if name == "priority" then
      f.priority = schema.priority_value(v) or 0
    elseif name ~= "completed_at" and name ~= "created_at" and name ~= "updated_at" and v ~= nil then
      f[name] = v
    end
  end
  return f
end

-- Put a deleted task back, with its id, as it was (version one more). An occurrence of a
-- series goes back to its place in it (series_id, occurrence_index, spawned_from), so
-- the series' COUNT still holds; the next occurrence its deletion made stays, and the
-- spawn ledger (tasks.spawn) keeps the restored one from making a second.
local function recreate(user, t)
  local res
  local rec = t.recurrence
  if type(rec) == "table" and type(rec.rule) == "string" then rec = series.stored(rec) end
  local ok, err, state = pg.tx(function(tx)
    local rows, e, s = tx:query([[
      INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags,
                         due_at, tz, recurrence, reminders, created_at, version,
                         series_id, occurrence_index, spawned_from)
      VALUES ($1::uuid, $2, $3::text, $4::text, $5::boolean, $6::timestamptz, $7::smallint, $8::text[],
              $9::timestamptz, $10::text, $11::jsonb, $12::jsonb, $13::timestamptz, $14::integer + 1,
              $15::uuid, $16::integer, $17::uuid)
      ON CONFLICT DO NOTHING RETURNING ]] .. store.COLUMNS,
      t.id, user, t.title, t.description, t.completed, t.completed_at, schema.priority_value(t.priority) or 0,
      pg.array(t.tags or {}), t.due_at, t.tz, rec, t.reminders, t.created_at, t.version,
      t.series_id, math.tointeger(t.occurrence_index) or 1, t.spawned_from)
    if not rows then return nil, e, s end
    if not rows[1] then
      res = { conflict = true }
      return true
    end
    local task = store.to_task(rows[1])
    local ok, perr, pstate = task_events.record(tx, user, "created", task)
    if not ok then return nil, perr, pstate end
    res = { task = task }
    return true
  end)
  if not ok then return nil, err, state end
  return res
end

--- Undo one of the user's changes: a creation is deleted, a deletion is put back, an
-- update is reverted; only while the task is still at the version the change made.
-- @tparam string user
-- @tparam integer change the history entry's id
-- @return `{undone = change, task = task | json.null}`, or nil, message, code, detail
--   (`not_found`: no such change; `version_conflict`: the task changed since, detail its
--   version; `cannot_undo`: the state before is not known)
function M.undo(user, change)
  local rows, err, state = pg.query("SELECT " .. ENTRY .. " FROM task_history WHERE id = $1 AND user_id = $2",
    change, user)
  if not rows then return repo.db_failure(err, state) end
  local e = rows[1]
  if not e then return nil, "change not found", "not_found" end
  local current, gerr, gstate = store.get(user, e.task_id)
  if current == nil then return repo.db_failure(gerr, gstate) end
  local function conflict(version)
    return nil, "the task has changed since this change (current version " .. tostring(version)
      .. "): only a task's latest change can be undone; see its history for that one",
      "version_conflict", version
  end
  local res
  if e.kind == "deleted" then
    if current then return conflict(current.version) end
    res, err, state = recreate(user, e.task)
  elseif not current or current.version ~= e.version then
    return conflict(current and current.version or "none (deleted)")
  elseif e.kind == "created" then
    res, err, state = store.delete(user, e.task_id, { e.version })
  else
    if e.before == NULL or type(e.before) ~= "table" then
      return nil, "the state before this change is not known", "cannot_undo"
    end
    local names = e.changed or {}
    local f = fields_from(e.before, names)
    local kind = "updated"
    if f.completed ~= nil and next(f, next(f)) == nil then kind = f.completed and "completed" or "reopened" end
    res, err, state = store.update(user, e.task_id, f, { e.version }, kind)
  end
  if not res then return repo.db_failure(err, state) end
  if res.missing then return conflict("none (deleted)") end
  if res.conflict then return conflict(res.version or (current and current.version)) end
  return { undone = change, task = e.kind == "created" and NULL or res.task }
end

return M

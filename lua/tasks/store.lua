--- The task statements, one at a time: every SQL statement on `tasks` that the
-- repository (tasks.repo) runs for a single request, and the one definition of what a
-- creation writes (`insert`, shared with the coalesced creations of tasks.coalesce).
-- Internal to lua/tasks: other code goes through tasks.repo, which validates input first.
-- Each statement is scoped to one user (`user_id = $1`) and takes values only as `$n`
-- parameters; the only SQL built at run time is assembled from the fixed fragments in
-- this file (sort columns, filters). Every change runs in a transaction that also writes
-- its events (tasks.events.record).
-- Failures: `nil, message, sqlstate, constraint` (the pg primitive's).
-- @module tasks.store

local pg = require "pg"
local json = require "json"
local crypto = require "crypto"
local cursor = require "tasks.cursor"
local task_row = require "tasks.row"
local events = require "tasks.events"

local M = {}

local COLUMNS = task_row.COLUMNS
M.COLUMNS = COLUMNS
M.to_task = task_row.to_task

local function to_tasks(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = M.to_task(r) end
  return json.array(out)
end

-- A small builder for parameter lists: `p(v)` appends v and returns "$n".
local function params(first)
  local list = { first }
  return list, function(v)
    list[#list + 1] = v
    return "$" .. #list
  end
end

-- The writable columns: the field, its SQL type (for the `$n::type` casts).
local FIELD_TYPES = {
  { "title", "text" }, { "description", "text" }, { "completed", "boolean" },
  { "priority", "smallint" }, { "tags", "text[]" }, { "due_at", "timestamptz" }, { "tz", "text" },
  { "recurrence", "jsonb" }, { "reminders", "jsonb" },
}

-- SET fragments for the writable fields present in `fields` (clean values from schema),
-- and the names of those fields with each one's new value as SQL (`$n::type`), to tell
-- which of them a row does not hold yet.
-- A recurrence without its own tz follows the task's zone, and is answered with the zone it
-- resolves to; sent back with that very zone it keeps following (stored without tz), so
-- that a task PATCHed with the recurrence it was returned with is not changed.
local function recurrence_value(ref, zone_after)
  return "CASE WHEN NOT (tasks.recurrence ? 'tz') AND " .. ref .. "::jsonb->>'tz' = coalesce(" .. zone_after
    .. ", 'UTC') THEN " .. ref .. "::jsonb - 'tz' ELSE " .. ref .. "::jsonb END"
end

local function set_clause(fields, p)
  local sets, new = {}, {}
  local zone_after = "tasks.tz"
  for _, ft in ipairs(FIELD_TYPES) do
    local name, sql_type = ft[1], ft[2]
    local v = fields[name]
    if v ~= nil then
      if name == "tags" then v = pg.array(v) end
      local value = p(v) .. "::" .. sql_type
      if name == "tz" then zone_after = value end
      if name == "recurrence" and type(v) == "table" and v.tz ~= nil then
        value = recurrence_value(value:match("^(%$%d+)"), zone_after)
      end
      new[#new + 1] = { name = name, value = value }
      sets[#sets + 1] = name .. " = " .. value
      if name == "completed" then
        sets[#sets + 1] = "completed_at = CASE WHEN " .. value .. " THEN coalesce(completed_at, now()) END"
      end
    end
  end
  return sets, new
end

-- SQL true when the row (columns qualified by `prefix`) differs from the new values in
-- at least one field: a change that sets fields to the values they hold changes nothing.
local function differs(new, prefix)
  local tests = {}
  for i, n in ipairs(new) do tests[i] = prefix .. n.name .. " IS DISTINCT FROM " .. n.value end
  return "(" .. table.concat(tests, " OR ") .. ")"
end

-- Run fn(tx) in a transaction; fn returns a result or nil, message, sqlstate, constraint.
-- The result, or the failure of fn (or else of the transaction, its COMMIT included).
local function in_tx(fn)
  local result, err, state, constraint
  local ok, tx_err, tx_state, tx_constraint = pg.tx(function(tx)
    result, err, state, constraint = fn(tx)
    if result == nil then return nil, err or "aborted" end
    return true
  end)
  if result ~= nil and ok then return result end
  if result == nil and err then return nil, err, state, constraint end
  return nil, tx_err or "transaction failed", tx_state, tx_constraint
end
M.in_tx = in_tx

-- What a creation writes: one statement for any number of tasks (a lone request is a
-- list of one), each row's values from `create_row`.
local INSERT = [[
  INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags,
                     due_at, tz, recurrence, reminders)
  SELECT r.id, r.user_id, r.title, r.description, r.completed,
         CASE WHEN r.completed THEN now() END, r.priority, r.tags, r.due_at, r.tz,
         r.recurrence, r.reminders
    FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, user_id text, title text, description text,
         completed boolean, priority smallint, tags text[], due_at timestamptz, tz text,
         recurrence jsonb, reminders jsonb)
  RETURNING ]] .. COLUMNS

-- A JSON value for a column of jsonb_to_recordset: absent (SQL NULL) for nil/null.
local function present(v)
  if v == nil or v == pg.null then return nil end
  return v
end

-- The stored values of one new task (clean fields from tasks.schema).
local function create_row(user, f, id)
  return {
    id = id, user_id = user, title = f.title, description = present(f.description),
    completed = f.completed == true, priority = f.priority or 0, tags = json.array(f.tags or {}),
    due_at = present(f.due_at), tz = present(f.tz), recurrence = present(f.recurrence),
    reminders = present(f.reminders),
  }
end

--- Insert new tasks inside `tx` (no events: the caller records them).
-- @param tx a `pg.tx`
-- @tparam table items array of `{user =, fields =, id =}` (ids chosen by the caller)
-- @return the rows by id, or nil, message, sqlstate, constraint
function M.insert(tx, items)
  local rows = {}
  for i, it in ipairs(items) do rows[i] = create_row(it.user, it.fields, it.id) end
  local created, err, state, constraint = tx:query(INSERT, json.array(rows))
  if not created then return nil, err, state, constraint end
  local by_id = {}
  for _, row in ipairs(created) do by_id[row.id] = row end
  return by_id
end

--- Create a task, with its `task.created` events.
-- @tparam string user
-- @tparam table f clean fields from `schema.task_input(body, "create")`
-- @tparam[opt] string id the new task's id (default: a new UUID); a retry with the same
--   id fails on the primary key instead of creating a second task
-- @return the task, or nil, message, sqlstate, constraint
function M.create(user, f, id)
  id = id or crypto.uuid_v4()
  return in_tx(function(tx)
    local by_id, err, state, constraint = M.insert(tx, { { user = user, fields = f, id = id } })
    if not by_id then return nil, err, state, constraint end
    local task = M.to_task(by_id[id])
    local ok, perr, pstate = events.record(tx, user, "created", task)
    if not ok then return nil, perr, pstate end
    return task
  end)
end

local GET = "SELECT " .. COLUMNS .. " FROM tasks WHERE id = $1::uuid AND user_id = $2"

--- Fetch one of the user's tasks.
-- @return the task, false when there is none, or nil, err, sqlstate
function M.get(user, id)
  local rows, err, state = pg.query(GET, id, user)
  if not rows then return nil, err, state end
  if not rows[1] then return false end
  return M.to_task(rows[1])
end

-- After a conditional write touched nothing: "not_found", or "conflict" and the version.
local function why_not(tx, user, id)
  local rows, err, state = tx:query(
    "SELECT version FROM tasks WHERE id = $1::uuid AND user_id = $2", id, user)
  if not rows then return nil, err, state end
  if not rows[1] then return { missing = true } end
  return { conflict = true, version = rows[1].version }
end

local function version_guard(versions, p)
  if versions == nil then return "" end
  return " AND version = ANY(" .. p(pg.array(versions)) .. "::integer[])"
end

--- Change some fields of a task. Fields set to the values they hold change nothing: when
-- every field is such, the task is answered as it is (no new version, no event); else
-- the event's `changed` names only the fields whose value changed.
-- @tparam string user
-- @tparam string id
-- @tparam table f clean fields (a subset)
-- @tparam[opt] table versions versions from If-Match; nil for no condition
-- @tparam[opt] string kind the event kind (default `updated`)
-- @return `{task = t}`, `{missing = true}`, `{conflict = true, version = n}`, or nil, err, sqlstate
function M.update(user, id, f, versions, kind)
  return in_tx(function(tx)
    local list, p = params(id)
    p(user)
    local guard = version_guard(versions, p)
    local sets, new = set_clause(f, p)
    local rows, err, state, constraint
    if #sets > 0 then
      sets[#sets + 1] = "version = version + 1"
      sets[#sets + 1] = "updated_at = now()"
      -- `old` locks the row and keeps the values before the change, to name what changed.
      local was, flags = {}, {}
      for i, n in ipairs(new) do
        was[i] = n.name .. " AS old_" .. n.name
        flags[i] = "old.old_" .. n.name .. " IS DISTINCT FROM tasks." .. n.name .. " AS changed_" .. n.name
      end
      local sql = "WITH old AS (SELECT id AS old_id, " .. table.concat(was, ", ")
        .. " FROM tasks WHERE id = $1::uuid AND user_id = $2" .. guard .. " FOR UPDATE)"
        .. " UPDATE tasks SET " .. table.concat(sets, ", ") .. " FROM old WHERE tasks.id = old.old_id AND "
        .. differs(new, "old.old_") .. " RETURNING " .. COLUMNS .. ", " .. table.concat(flags, ", ")
      rows, err, state, constraint = tx:query(sql, table.unpack(list, 1, #list))
      if not rows then return nil, err, state, constraint end
    end
    if not (rows and rows[1]) then
      -- Nothing changed: answer the task as it is (still honouring If-Match), or say why not.
      rows, err, state = tx:query("SELECT " .. COLUMNS
        .. " FROM tasks WHERE id = $1::uuid AND user_id = $2" .. guard, table.unpack(list, 1, versions and 3 or 2))
      if not rows then return nil, err, state end
      if rows[1] then return { task = M.to_task(rows[1]) } end
      return why_not(tx, user, id)
    end
    local really = {}
    for _, n in ipairs(new) do
      if rows[1]["changed_" .. n.name] == true then really[n.name] = f[n.name] end
    end
    local task = M.to_task(rows[1])
    local ok, perr, pstate = events.record(tx, user, kind or "updated", task, events.changed_fields(really))
    if not ok then return nil, perr, pstate end
    return { task = task }
  end)
end

--- Delete a task.
-- @tparam[opt] function after `after(tx, user, row)` run in the transaction once the row
--   (`row`, as stored) is deleted; returning nil, err rolls back (recurrence.delete.skip)
-- @return `{task = t}` (as it was), `{missing = true}`, `{conflict = true, version = n}`,
--   or nil, err, sqlstate
function M.delete(user, id, versions, after)
  return in_tx(function(tx)
    local list, p = params(id)
    p(user)
    local rows, err, state = tx:query("DELETE FROM tasks WHERE id = $1::uuid AND user_id = $2"
      .. version_guard(versions, p) .. " RETURNING " .. COLUMNS, table.unpack(list, 1, #list))
    if not rows then return nil, err, state end
    if not rows[1] then return why_not(tx, user, id) end
    local task = M.to_task(rows[1])
    local ok, perr, pstate = events.record(tx, user, "deleted", task)
    if not ok then return nil, perr, pstate end
    if after then
      local done, aerr, astate = after(tx, user, rows[1])
      if done == nil then return nil, aerr, astate end
    end
    return { task = task }
  end)
end

-- Listing ------------------------------------------------------------------------------

-- Sort keys: the column (or expression), its type for the cursor cast, nullable or not.
local SORT = {
  due = { col = "due_at", type = "timestamptz", nullable = true },
  priority = { col = "priority", type = "smallint" },
  created = { col = "created_at", type = "timestamptz" },
  updated = { col = "updated_at", type = "timestamptz" },
  title = { col = "title", type = "text" },
  relevance = { col = "rank", type = "real" },
}

--- Append the WHERE fragments of a filter (see `schema.filter`) to `where`.
-- @return the tsquery placeholder when the filter searches text
local function filter_clause(f, where, p)
  if f.status == "pending" then where[#where + 1] = "NOT completed"
  elseif f.status == "completed" then where[#where + 1] = "completed" end
  if f.priorities and #f.priorities > 0 then
    where[#where + 1] = "priority = ANY(" .. p(pg.array(f.priorities)) .. "::smallint[])"
  end
  if f.tags and #f.tags > 0 then
    local op = f.tags_mode == "all" and " @> " or " && "
    where[#where + 1] = "tags" .. op .. p(pg.array(f.tags)) .. "::text[]"
  end
  if f.due_before then where[#where + 1] = "due_at < " .. p(f.due_before) .. "::timestamptz" end
  if f.due_after then where[#where + 1] = "due_at >= " .. p(f.due_after) .. "::timestamptz" end
  if f.overdue == true then
    where[#where + 1] = "(NOT completed AND due_at < now())"
  elseif f.overdue == false then
    where[#where + 1] = "(completed OR due_at IS NULL OR due_at >= now())"
  end
  if f.q then
    local tsq = "websearch_to_tsquery('english', " .. p(f.q) .. "::text)"
    where[#where + 1] = "search @@ " .. tsq
    return tsq
  end
end
M.filter_clause = filter_clause

--- The position a list cursor names, checked against the list's sort and order.
-- @return `{key =, id =}`, or nil and a message for a cursor that is not valid here
function M.after(user, o)
  local c, msg = cursor.decode(user, o.sort, o.order, o.cursor)
  if not c then return nil, msg end
  if not c.id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") then return nil, "cursor is not valid" end
  if c.key == nil and not SORT[o.sort].nullable then return nil, "cursor is not valid" end
  return c
end

--- List the user's tasks.
-- @tparam string user
-- @tparam table o options from `schema.list_options`, with `after` (the decoded cursor,
--   `M.after(user, o)`) instead of `cursor`
-- @return `{items = [...], next_cursor = string|json.null}`, or nil, message, sqlstate
function M.list(user, o)
  local list, p = params(user)
  local where = { "user_id = $1" }
  local tsq = filter_clause(o.filter, where, p)
  local s = SORT[o.sort]
  local col = s.col
  local select_rank = ""
  if tsq then
    select_rank = ", ts_rank(search, " .. tsq .. ") AS rank"
    if o.sort == "relevance" then col = "ts_rank(search, " .. tsq .. ")" end
  end
  local desc = o.order == "desc"
  local cmp = desc and " < " or " > "
  local c = o.after
  if c then
    local id = p(c.id) .. "::uuid"
    if c.key == nil then
      where[#where + 1] = "(" .. col .. " IS NULL AND id" .. cmp .. id .. ")"
    else
      local key = p(c.key) .. "::" .. s.type
      local row = "(" .. col .. ", id)" .. cmp .. "(" .. key .. ", " .. id .. ")"
      if s.nullable then row = "(" .. row .. " OR " .. col .. " IS NULL)" end
      where[#where + 1] = row
    end
  end
  local dir = desc and " DESC" or " ASC"
  local sql = "SELECT " .. COLUMNS .. select_rank .. ", (" .. col .. ")::text AS sort_key"
    .. " FROM tasks WHERE " .. table.concat(where, " AND ")
    -- tasks.id, not the output column id (id::text), so that the index gives the order.
    .. " ORDER BY " .. col .. dir .. (s.nullable and " NULLS LAST" or "") .. ", tasks.id" .. dir
    .. " LIMIT " .. p(o.limit + 1) .. "::integer"
  local rows, err, state = pg.query(sql, table.unpack(list, 1, #list))
  if not rows then return nil, err, state end
  local items = {}
  for i = 1, math.min(#rows, o.limit) do items[i] = M.to_task(rows[i]) end
  local next_cursor = json.null
  if #rows > o.limit then
    local last = rows[o.limit]
    local key = last.sort_key
    if key == pg.null then key = nil end
    next_cursor = cursor.encode(user, o.sort, o.order, key, last.id)
  end
  return { items = json.array(items), next_cursor = next_cursor }
end

--- The user's tags with the number of tasks carrying each, most used first.
function M.tags(user)
  local rows, err, state = pg.query([[
    SELECT tag, count(*)::integer AS count
      FROM tasks, unnest(tags) AS tag
     WHERE user_id = $1
     GROUP BY tag
     ORDER BY count(*) DESC, tag]], user)
  if not rows then return nil, err, state end
  local items = {}
  for i, row in ipairs(rows) do items[i] = { tag = row.tag, count = row.count } end
  return json.array(items)
end

-- Bulk ---------------------------------------------------------------------------------

M.BULK_MAX = 1000

--- Apply one action to many tasks, all or nothing.
-- @tparam string user
-- @tparam table b from `bulk.parse`: action, ids or filter, fields, time, shift, tz
-- @return a result table (`{missing = id}` / `{too_many = n}` when refused), or nil, err, sqlstate
function M.bulk(user, b)
  return in_tx(function(tx)
    -- 1. The target set, locked.
    local list, p = params(user)
    local sql
    if b.ids then
      sql = "SELECT id::text AS id FROM tasks WHERE user_id = $1 AND id = ANY("
        .. p(pg.array(b.ids)) .. "::uuid[]) ORDER BY id FOR UPDATE"
    else
      local where = { "user_id = $1" }
      filter_clause(b.filter, where, p)
      sql = "SELECT id::text AS id FROM tasks WHERE " .. table.concat(where, " AND ")
        .. " ORDER BY id LIMIT " .. (M.BULK_MAX + 1) .. " FOR UPDATE"
    end
    local rows, err, state = tx:query(sql, table.unpack(list, 1, #list))
    if not rows then return nil, err, state end
    local ids = {}
    for i, row in ipairs(rows) do ids[i] = row.id end
    if b.ids then
      local found = {}
      for _, id in ipairs(ids) do found[id] = true end
      for _, id in ipairs(b.ids) do
        if not found[id] then return { missing = id } end
      end
    elseif #ids > M.BULK_MAX then
      return { too_many = #ids }
    end
    local result = { action = b.action, matched = #ids }
    if #ids == 0 then
      result.changed = 0
      result.items = json.array({})
      if b.action == "delete" then result.ids = json.array({}) end
      return result
    end

    -- 2. The change.
    list, p = params(user)
    local target = "user_id = $1 AND id = ANY(" .. p(pg.array(ids)) .. "::uuid[])"
    local bump = "version = version + 1, updated_at = now()"
    local kind, changed = "updated", nil
    if b.action == "delete" then
      sql = "DELETE FROM tasks WHERE " .. target .. " RETURNING " .. COLUMNS
      kind = "deleted"
    elseif b.action == "complete" then
      sql = "UPDATE tasks SET completed = true, completed_at = now(), " .. bump
        .. " WHERE " .. target .. " AND NOT completed RETURNING " .. COLUMNS
      kind, changed = "completed", { "completed", "completed_at" }
    elseif b.action == "reopen" then
      sql = "UPDATE tasks SET completed = false, completed_at = NULL, " .. bump
        .. " WHERE " .. target .. " AND completed RETURNING " .. COLUMNS
      kind, changed = "reopened", { "completed", "completed_at" }
    elseif b.action == "update" then
      local sets, new = set_clause(b.fields, p)
      sets[#sets + 1] = bump
      -- A task that holds these values already is not changed (as a PATCH).
      sql = "UPDATE tasks SET " .. table.concat(sets, ", ") .. " WHERE " .. target
        .. " AND " .. differs(new, "") .. " RETURNING " .. COLUMNS
      changed = events.changed_fields(b.fields)
    elseif b.action == "reschedule" then
      -- Wall-clock arithmetic in each task's own zone (or the request's, or UTC).
      local zone = "coalesce(tz, " .. p(b.tz or "UTC") .. "::text)"
      local lt = "(due_at AT TIME ZONE " .. zone .. ")"
      if b.shift then
        lt = "(" .. lt .. " + make_interval(days => " .. p(b.shift.days) .. "::integer, hours => "
          .. p(b.shift.hours) .. "::integer, mins => " .. p(b.shift.minutes) .. "::integer))"
      end
      if b.time then lt = "(" .. lt .. "::date + " .. p(b.time) .. "::time)" end
      sql = "UPDATE tasks SET due_at = " .. lt .. " AT TIME ZONE " .. zone .. ", " .. bump
        .. " WHERE " .. target .. " AND due_at IS NOT NULL RETURNING " .. COLUMNS
      changed = { "due_at" }
    else
      error("unknown bulk action " .. tostring(b.action))
    end
    local constraint
    rows, err, state, constraint = tx:query(sql, table.unpack(list, 1, #list))
    if not rows then return nil, err, state, constraint end
    table.sort(rows, function(a, c) return a.id < c.id end)
    local items = to_tasks(rows)
    local ok, perr, pstate = events.record_many(tx, user, kind, items, changed)
    if not ok then return nil, perr, pstate end
    result.changed = #items
    if b.action == "delete" then
      local gone = {}
      for i, t in ipairs(items) do gone[i] = t.id end
      result.ids = json.array(gone)
    else
      result.items = items
    end
    return result
  end)
end

return M

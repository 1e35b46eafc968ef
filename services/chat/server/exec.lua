--- Runs the task tools (lua/chat/tools.lua) for one user through the task repository
-- (lua/tasks/repo.lua), the same code as the REST API: same validation, same events and
-- history, same scoping. A change made through a tool is a REST change.
--
-- Each call answers a plain table: `{task = ...}`, `{items = ...}`, `{tasks = ...}`, or
-- `{error = {code, message, field}}` (a refused input, a task that is not the user's,
-- the database out of reach); a tool never raises on bad input.
-- @module chat.server.exec

local repo = require "tasks.repo"
local snooze = require "reminders.snooze"
local tools = require "chat.tools"
local json = require "json"
local tz = require "tz"

local M = {}

--- Most tasks a list shows in chat.
M.LIST_LIMIT = 20

local NULL = json.null

local function fail(message, code, field)
  return { error = { code = code or "invalid_field", message = message, field = field } }
end

-- A repository failure as a tool error. The database's own text is logged, never
-- answered (a tool error reaches the user in chat and the model over MCP): a failure on
-- our side is `internal_error` and an unreachable database `unavailable`, the codes and
-- wording of the REST API (lua/web/errors.lua, docs/api.md).
local function repo_fail(message, code, detail)
  if code == nil or code == "internal" then
    require("log").error("task tool failed", { cause = tostring(message) })
    return fail("something went wrong on our side; please try again", "internal_error")
  end
  if code == "unavailable" then
    require("log").warn("database unavailable", { cause = tostring(message) })
    return fail("the service cannot reach its database right now; retry shortly", "unavailable")
  end
  return fail(message, code, type(detail) == "string" and detail or nil)
end

-- A recurrence argument: an RRULE, or an English phrase.
local function recurrence_input(v, zone)
  if v == NULL then return NULL end
  if type(v) ~= "string" then return v end
  local rule = v:gsub("^RRULE:", "")
  if rule:match("^FREQ=") or rule:match(";FREQ=") then return { rule = rule, tz = zone } end
  return { phrase = v, tz = zone }
end

-- Task fields from tool arguments (what a REST client would send).
local function task_input(args, zone)
  local input = {}
  for _, k in ipairs { "title", "description", "priority", "tags", "due_at", "reminders" } do
    if args[k] ~= nil then input[k] = args[k] end
  end
  if args.recurrence ~= nil then input.recurrence = recurrence_input(args.recurrence, args.tz or zone) end
  if (input.due_at ~= nil and input.due_at ~= NULL) or (input.recurrence ~= nil and input.recurrence ~= NULL) then
    input.tz = args.tz or zone
  end
  if type(input.tags) == "table" then input.tags = json.array(input.tags) end
  if type(input.reminders) == "table" then input.reminders = json.array(input.reminders) end
  return input
end

local run = {}

function run.add_task(user, args, env)
  local task, msg, code, field = repo.create(user, task_input(args, env.tz))
  if not task then return repo_fail(msg, code, field) end
  return { task = task }
end

-- list_tasks arguments as GET /api/tasks parameters.
local function list_query(args)
  local q = { limit = tostring(args.limit or M.LIST_LIMIT) }
  if args.status then q.status = args.status end
  if args.priority then q.priority = args.priority end
  if args.tags then q.tag = args.tags end
  if args.q then q.q = args.q end
  if args.due_after then q.due_after = args.due_after end
  if args.due_before then q.due_before = args.due_before end
  if args.overdue ~= nil then q.overdue = tostring(args.overdue) end
  q.sort = args.sort or (args.q and "relevance") or "created"
  if q.sort == "created" then q.order = "asc" end
  return q
end

function run.list_tasks(user, args)
  local page, msg, code, field = repo.list(user, list_query(args))
  if not page then return repo_fail(msg, code, field) end
  return { items = json.array(page.items) }
end

local function state(completed)
  return function(user, args)
    local task, msg, code = repo.set_completed(user, args.id, completed)
    if not task then return repo_fail(msg, code) end
    return { task = task }
  end
end
run.complete_task = state(true)
run.reopen_task = state(false)

function run.delete_task(user, args)
  local task, msg, code = repo.delete(user, args.id)
  if not task then return repo_fail(msg, code) end
  return { task = task }
end

local function merge_tags(current, add, remove)
  local out, seen, drop = {}, {}, {}
  for _, t in ipairs(remove or {}) do drop[tostring(t):lower()] = true end
  for _, list in ipairs { current or {}, add or {} } do
    for _, t in ipairs(list) do
      local k = tostring(t):lower()
      if not seen[k] and not drop[k] then
        seen[k] = true
        out[#out + 1] = t
      end
    end
  end
  return json.array(out)
end

function run.update_task(user, args, env)
  local input = task_input(args, env.tz)
  local opts
  if args.add_tags or args.remove_tags then
    -- read, merge, write back only if nobody changed the task meanwhile
    local task, msg, code = repo.get(user, args.id)
    if not task then return repo_fail(msg, code) end
    input.tags = merge_tags(args.tags or task.tags, args.add_tags, args.remove_tags)
    opts = { versions = { task.version } }
  end
  if next(input) == nil then return fail("nothing to change: give a title, priority, tags, due_at, "
    .. "description, recurrence or reminders", "invalid_field") end
  local task, msg, code, detail = repo.update(user, args.id, input, opts)
  if not task then return repo_fail(msg, code, detail) end
  return { task = task }
end

-- The new due time of a task moved to a date (keeping its time of day) or a time of day
-- (keeping its date), in the task's zone (else the conversation's).
local function moved(task, args, zone, now)
  zone = (type(task.tz) == "string" and task.tz) or zone
  local due = type(task.due_at) == "string" and tz.parse_rfc3339(task.due_at)
  local y, m, d, h, mi
  if due then
    y, m, d, h, mi = tz.to_local(due, zone)
  else
    y, m, d = tz.to_local(now, zone)
    h, mi = 9, 0
  end
  if args.date then
    local yy, mm, dd = args.date:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    y, m, d = tonumber(yy), tonumber(mm), tonumber(dd)
  end
  if args.time then
    local hh, mn = args.time:match("^(%d%d):(%d%d)$")
    h, mi = tonumber(hh), tonumber(mn)
  end
  return tz.format(tz.from_local(y, m, d, h, mi, 0, zone), zone), zone
end

function run.reschedule_tasks(user, args, env)
  if not (args.time or args.date or args.due_at) then
    return fail("give a time (HH:MM), a date (YYYY-MM-DD) or a due_at", "required", "time")
  end
  if args.time and not args.time:match("^[01]%d:[0-5]%d$") and not args.time:match("^2[0-3]:[0-5]%d$") then
    return fail("time must be HH:MM, like 14:00", "invalid_field", "time")
  end
  if args.date and not args.date:match("^%d%d%d%d%-%d%d%-%d%d$") then
    return fail("date must be YYYY-MM-DD", "invalid_field", "date")
  end
  -- Every id must be the user's before any task moves: another user's (or an unknown) id
  -- answers not found and changes nothing, as POST /api/tasks/bulk does.
  local tasks = {}
  for i, id in ipairs(args.ids) do
    local task, msg, code = repo.get(user, id)
    if not task then return repo_fail(msg, code) end
    tasks[i] = task
  end
  local out = {}
  for i, id in ipairs(args.ids) do
    local task = tasks[i]
    local input
    if args.due_at then
      input = { due_at = args.due_at, tz = args.tz or task.tz or env.tz }
    else
      local ok, due, zone = pcall(moved, task, args, args.tz or env.tz, env.now)
      if not ok then return fail("that date does not exist", "invalid_field", "date") end
      input = { due_at = due, tz = zone }
    end
    local updated, umsg, ucode, detail = repo.update(user, id, input, { versions = { task.version } })
    if not updated then return repo_fail(umsg, ucode, detail) end
    out[#out + 1] = updated
  end
  return { tasks = out }
end

-- The snooze is reminders.snooze, the code of POST /api/tasks/:id/snooze: same checks,
-- same schedule row, same wake-up. The task is read first (scoped to the user) so that
-- another user's task is "not found" even where no reminders run, and for the answer.
function run.snooze_reminder(user, args)
  local task, msg, code = repo.get(user, args.id)
  if not task then return repo_fail(msg, code) end
  local out, p = snooze.snooze(user, args.id, { ["for"] = args["for"], ["until"] = args["until"] })
  if not out then
    if p.db then return repo_fail(select(2, repo.db_failure(p.err, p.state))) end
    return fail(p.message, p.code, p.field)
  end
  return { task = task, remind_at = out.remind_at }
end

function run.plan_day(user, args, env)
  local zone = args.tz or env.tz
  local y, m, d
  if args.date then
    local yy, mm, dd = tostring(args.date):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not yy then return fail("date must be YYYY-MM-DD", "invalid_field", "date") end
    y, m, d = tonumber(yy), tonumber(mm), tonumber(dd)
  else
    y, m, d = tz.to_local(env.now, zone)
  end
  local start = tz.from_local(y, m, d, 0, 0, 0, zone)
  local stop = tz.from_local(y, m, d + 1, 0, 0, 0, zone)
  local seen, out = {}, { overdue = {}, due = {}, next = {} }
  local function take(list, into)
    for _, t in ipairs(list) do
      if not seen[t.id] then
        seen[t.id] = true
        into[#into + 1] = t
      end
    end
  end
  local overdue, msg, code = repo.list(user, { overdue = "true", sort = "due", limit = "20" })
  if not overdue then return repo_fail(msg, code) end
  take(overdue.items, out.overdue)
  local due
  due, msg, code = repo.list(user, { status = "pending", sort = "due", limit = "50",
    due_after = tz.format(start, "UTC"), due_before = tz.format(stop, "UTC") })
  if not due then return repo_fail(msg, code) end
  take(due.items, out.due)
  local rest
  rest, msg, code = repo.list(user, { status = "pending", sort = "priority", limit = "10" })
  if not rest then return repo_fail(msg, code) end
  take(rest.items, out.next)
  out.date = string.format("%04d-%02d-%02d", y, m, d)
  out.items = {}
  for _, k in ipairs { "overdue", "due", "next" } do
    for _, t in ipairs(out[k]) do out.items[#out.items + 1] = t end
    out[k] = json.array(out[k])
  end
  out.items = json.array(out.items)
  return out
end

--- Run one tool call for a user.
-- @tparam string user the authenticated user
-- @tparam string name tool name
-- @tparam table args the arguments (checked against the tool's schema first)
-- @tparam table env `{tz = zone, now = epoch}`
-- @treturn table the result (see the module's description)
function M.call(user, name, args, env)
  local ok, why = tools.check(name, args)
  if not ok then return fail(why, "invalid_arguments") end
  return run[name](user, args, env)
end

return M

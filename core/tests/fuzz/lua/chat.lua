-- Fuzz driver of the chat assistant's parser (fuzz_chat.c): one input is a conversation,
-- one message per line, read as POST /api/chat reads it (chat.server.turn without its
-- storage): chat.parse with the conversation's context and the user's tasks, the tool
-- calls run by chat.server.exec (tools.check, then the task repository), the answer
-- (chat.say), the next context (chat.context, which must encode: it is stored), and each
-- line once more as POST /api/parse reads it (chat.parse.quick_add).
-- An optional first line "@<epoch> <zone>" sets the clock and the zone (default
-- 2026-05-04T07:00:00Z, Europe/Berlin); the clock is a server's, between 1970 and 2200
-- (a message reaches the edges of the supported range by itself: "on 31 dec 9999").
--
-- Doubles (no database here): `tasks.repo` and `reminders.snooze` are replaced by
-- in-memory doubles that validate exactly as the real ones do before their SQL
-- (tasks.schema.task_input, tasks.schema.list_options) and answer tasks of the shape the
-- real repository returns; nothing is stored between inputs.
local check = require "fuzz_check"
local json = require "json"
local schema = require "tasks.schema"

local NULL = json.null
local USER = "fuzz-user"

local TASKS = {
  { id = "00000000-0000-4000-8000-000000000001", title = "Buy milk", completed = false, priority = "high",
    tags = json.array { "home" }, due_at = "2026-05-04T09:00:00Z", tz = "Europe/Berlin", version = 3,
    reminders = NULL, recurrence = NULL },
  { id = "00000000-0000-4000-8000-000000000002", title = "Team meeting", completed = false, priority = "none",
    tags = json.array {}, due_at = NULL, tz = NULL, version = 1, reminders = NULL, recurrence = NULL },
  { id = "00000000-0000-4000-8000-000000000003", title = "Pay rent", completed = true, priority = "medium",
    tags = json.array { "bills", "home" }, due_at = "2026-05-01T09:00:00+02:00", tz = "Europe/Paris",
    version = 7, reminders = NULL,
    recurrence = { rule = "FREQ=MONTHLY;BYMONTHDAY=1", from = "due", description = "every month on the 1st" } },
}
local BY_ID = {}
for _, t in ipairs(TASKS) do BY_ID[t.id] = t end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local NOT_FOUND = "task not found"

-- Test double of tasks.repo: the real validation, no SQL.
local repo = {}
function repo.get(_, id)
  local t = BY_ID[id]
  if not t then return nil, NOT_FOUND, "not_found" end
  return copy(t)
end
local function apply(t, fields)
  for k, v in pairs(fields) do
    if k == "priority" then v = v == NULL and "none" or v end
    t[k] = v
  end
  t.version = (t.version or 0) + 1
  return t
end
function repo.create(_, input)
  local fields, msg, code, field = schema.task_input(input, "create")
  if not fields then return nil, msg, code, field end
  return apply({ id = "00000000-0000-4000-8000-0000000000ff", completed = false, priority = "none",
    tags = json.array {}, due_at = NULL, tz = NULL, recurrence = NULL, reminders = NULL, version = 0 }, fields)
end
function repo.update(_, id, input)
  local t = BY_ID[id]
  if not t then return nil, NOT_FOUND, "not_found" end
  local fields, msg, code, field = schema.task_input(input, "patch")
  if not fields then return nil, msg, code, field end
  return apply(copy(t), fields)
end
function repo.set_completed(_, id, completed)
  local t = BY_ID[id]
  if not t then return nil, NOT_FOUND, "not_found" end
  return apply(copy(t), { completed = completed })
end
function repo.delete(_, id)
  local t = BY_ID[id]
  if not t then return nil, NOT_FOUND, "not_found" end
  return copy(t)
end
function repo.list(_, query)
  local one, all = {}, {}
  for name, v in pairs(query or {}) do
    if type(v) == "table" then
      all[name], one[name] = v, v[1]
    else
      all[name], one[name] = { tostring(v) }, tostring(v)
    end
  end
  local opts, msg, code, field = schema.list_options({ query = one, query_all = all })
  if not opts then return nil, msg, code, field end
  local items = {}
  for i, t in ipairs(TASKS) do items[i] = copy(t) end
  return { items = items }
end
function repo.db_failure() return nil, "the database is unavailable", "unavailable" end
package.loaded["tasks.repo"] = repo

-- Test double of reminders.snooze: no reminder has fired (the answer when none is due).
package.loaded["reminders.snooze"] = {
  snooze = function()
    return nil, { status = 409, code = "nothing_to_snooze", message = "no reminder of this task has fired" }
  end,
}

local parse = require "chat.parse"
local context = require "chat.context"
local say = require "chat.say"
local exec = require "chat.server.exec"

local KINDS = { calls = true, reply = true, choose = true, confirm = true }

return function(data)
  local lines = check.lines(data)
  local now, zone = 1777878000, "Europe/Berlin"
  local first = 1
  local at, z = (lines[1] or ""):match("^@(%-?%d+) (%S+)$")
  local t = at and math.tointeger(tonumber(at))
  if t and t >= 0 and t < 7258118400 and require("tz").valid(z) then
    now, zone, first = t, z, 2
  end
  local ctx = {}
  for i = first, #lines do
    local text = lines[i]
    local result = parse.parse(text, ctx, now, zone, TASKS)
    check.that(type(result) == "table" and KINDS[result.kind], "parse gave a %s result",
      tostring(result and result.kind))
    local outcomes = {}
    if result.kind == "calls" then
      for j, c in ipairs(result.calls) do
        local r = exec.call(USER, c.name, c.arguments, { tz = zone, now = now })
        check.that(type(r) == "table", "tool %s answered a %s", tostring(c.name), type(r))
        outcomes[j] = { name = c.name, arguments = c.arguments, result = r }
      end
    end
    local answer = say.answer(result, outcomes, zone, now)
    check.that(type(answer) == "string", "the answer is a %s", type(answer))
    ctx = context.after(ctx, result, outcomes)
    check.encodes("the context", ctx)
    check.encodes("the tool calls", outcomes)
    local fields, msg = parse.quick_add(text, now, zone)
    check.convention("quick_add", fields, msg)
    if fields then check.encodes("quick_add's fields", fields) end
  end
end

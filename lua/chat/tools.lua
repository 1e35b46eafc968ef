--- The task tools: name, a short description and the JSON Schema of the arguments.
-- This list is the one contract shared by the offline assistant (chat.parse produces
-- calls of these tools), the language-model mode (sent as OpenAI `tools`) and the MCP
-- server (`tools/list`). Pure data plus a small argument checker.
-- @module chat.tools

local M = {}

local ID = { type = "string", description = "the task's id (a UUID)" }
local IDS = { type = "array", items = ID, minItems = 1, maxItems = 100,
  description = "ids of the tasks (UUIDs)" }
local PRIORITY = { type = "string", enum = { "none", "low", "medium", "high" } }
local TAGS = { type = "array", items = { type = "string", minLength = 1, maxLength = 32 }, maxItems = 20 }
local INSTANT = { type = "string", format = "date-time",
  description = "RFC 3339 instant with an offset, e.g. 2026-05-01T09:00:00+02:00" }
local TZ = { type = "string", description = "IANA time zone the user meant, e.g. Europe/Paris" }
local RECURRENCE = { type = "string",
  description = "an RFC 5545 RRULE (FREQ=WEEKLY;BYDAY=MO) or an English phrase (every monday)" }
local REMINDERS = { type = "array", maxItems = 10, items = { type = "object", properties = {
  at = INSTANT,
  before = { type = "string", description = "ISO 8601 duration before the due time, e.g. PT15M" },
}, additionalProperties = false } }

--- The tools, in the order they are listed.
M.list = {
  {
    name = "add_task",
    description = "Create a task.",
    input_schema = {
      type = "object",
      properties = {
        title = { type = "string", minLength = 1, maxLength = 200 },
        description = { type = "string", maxLength = 4000 },
        priority = PRIORITY,
        tags = TAGS,
        due_at = INSTANT,
        tz = TZ,
        recurrence = RECURRENCE,
        reminders = REMINDERS,
      },
      required = { "title" },
      additionalProperties = false,
    },
  },
  {
    name = "list_tasks",
    description = "List the user's tasks, with optional filters, search and sort.",
    input_schema = {
      type = "object",
      properties = {
        status = { type = "string", enum = { "all", "pending", "completed" } },
        priority = { type = "array", items = PRIORITY },
        tags = TAGS,
        q = { type = "string", maxLength = 200, description = "full-text search in title and description" },
        due_after = INSTANT,
        due_before = INSTANT,
        overdue = { type = "boolean" },
        sort = { type = "string", enum = { "due", "priority", "created", "updated", "title" } },
        limit = { type = "integer", minimum = 1, maximum = 200 },
      },
      additionalProperties = false,
    },
  },
  {
    name = "complete_task",
    description = "Mark a task as completed.",
    input_schema = { type = "object", properties = { id = ID }, required = { "id" },
      additionalProperties = false },
  },
  {
    name = "reopen_task",
    description = "Mark a completed task as pending again.",
    input_schema = { type = "object", properties = { id = ID }, required = { "id" },
      additionalProperties = false },
  },
  {
    name = "delete_task",
    description = "Delete a task.",
    input_schema = { type = "object", properties = { id = ID }, required = { "id" },
      additionalProperties = false },
  },
  {
    name = "update_task",
    description = "Change a task: title, description, priority, tags, due time, reminders or "
      .. "recurrence. null clears due_at, description or recurrence.",
    input_schema = {
      type = "object",
      properties = {
        id = ID,
        title = { type = "string", minLength = 1, maxLength = 200 },
        description = { type = { "string", "null" }, maxLength = 4000 },
        priority = PRIORITY,
        tags = TAGS,
        add_tags = TAGS,
        remove_tags = TAGS,
        due_at = { type = { "string", "null" }, format = "date-time" },
        tz = TZ,
        recurrence = { type = { "string", "null" }, description = RECURRENCE.description },
        reminders = REMINDERS,
      },
      required = { "id" },
      additionalProperties = false,
    },
  },
  {
    name = "reschedule_tasks",
    description = "Move several tasks at once: to a new time of day (keeping each date), to a "
      .. "new date (keeping each time), or to one instant.",
    input_schema = {
      type = "object",
      properties = {
        ids = IDS,
        time = { type = "string", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", description = "HH:MM local time" },
        date = { type = "string", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "YYYY-MM-DD local date" },
        due_at = INSTANT,
        tz = TZ,
      },
      required = { "ids" },
      additionalProperties = false,
    },
  },
  {
    name = "snooze_reminder",
    description = "Snooze a task's reminder that fired: for a duration or until an instant.",
    input_schema = {
      type = "object",
      properties = {
        id = ID,
        ["for"] = { type = "string", description = "ISO 8601 duration, e.g. PT10M" },
        ["until"] = INSTANT,
      },
      required = { "id" },
      additionalProperties = false,
    },
  },
  {
    name = "plan_day",
    description = "The day's plan: overdue tasks, then those due that day, then the rest by priority.",
    input_schema = {
      type = "object",
      properties = {
        date = { type = "string", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description = "YYYY-MM-DD, default today" },
        tz = TZ,
      },
      additionalProperties = false,
    },
  },
}

--- Tools by name.
M.by_name = {}
for _, t in ipairs(M.list) do M.by_name[t.name] = t end

local function kind_ok(v, want)
  if type(want) == "table" then
    for _, k in ipairs(want) do if kind_ok(v, k) then return true end end
    return false
  end
  if want == "null" then return v == nil or (type(v) == "userdata") end
  if want == "integer" then return math.type(v) == "integer" end
  if want == "array" or want == "object" then return type(v) == "table" end
  return type(v) == want
end

--- Check the shape of a call's arguments against the tool's schema: known tool, known
-- properties, required ones present, JSON types and enums. (Values such as dates and
-- ids are checked by the task domain, which answers with messages of its own.)
-- @tparam string name tool name
-- @tparam table args decoded arguments
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string what is wrong
function M.check(name, args)
  local tool = M.by_name[name]
  if not tool then return nil, "unknown tool " .. tostring(name) end
  if type(args) ~= "table" then return nil, "arguments must be an object" end
  local schema = tool.input_schema
  for k, v in pairs(args) do
    local p = schema.properties[k]
    if not p then return nil, "unknown argument " .. tostring(k) .. " for " .. name end
    if not kind_ok(v, p.type) then
      local want = type(p.type) == "table" and table.concat(p.type, " or ") or p.type
      return nil, k .. " must be " .. (want == "array" and "an array" or want == "object" and "an object" or want)
    end
    if p.enum then
      local ok = false
      for _, e in ipairs(p.enum) do if e == v then ok = true end end
      if not ok then return nil, k .. " must be one of " .. table.concat(p.enum, ", ") end
    end
    if p.type == "array" and p.items and p.items.enum then
      for _, item in ipairs(v) do
        local ok = false
        for _, e in ipairs(p.items.enum) do if e == item then ok = true end end
        if not ok then return nil, k .. " items must be among " .. table.concat(p.items.enum, ", ") end
      end
    end
  end
  for _, k in ipairs(schema.required or {}) do
    if args[k] == nil then return nil, k .. " is required" end
  end
  return true
end

return M

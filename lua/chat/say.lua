--- The assistant's answers: short sentences saying what was done, from the executed
-- calls and their results (times shown in the user's zone). A tool's failure becomes a
-- helpful sentence, never an error page. Pure Lua (times through the tz primitive).
-- @module chat.say

local tz = require "tz"

local M = {}

local WD = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MON = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

--- "today 17:00", "tomorrow 09:00", "Thu 10 Dec 14:00", "Mon 4 Jan 2027 09:00".
-- @tparam string rfc3339 an instant
-- @tparam string zone the user's zone
-- @tparam integer now epoch seconds
function M.when(rfc3339, zone, now)
  local t = type(rfc3339) == "string" and tz.parse_rfc3339(rfc3339)
  if not t then return nil end
  local y, m, d, h, mi, _, wd = tz.to_local(t, zone)
  local ny, nm, nd = tz.to_local(now, zone)
  local day_t = tz.from_local(y, m, d, 12, 0, 0, "UTC")
  local today_t = tz.from_local(ny, nm, nd, 12, 0, 0, "UTC")
  local diff = (day_t - today_t) // 86400
  local clock = string.format("%02d:%02d", h, mi)
  if diff == 0 then return "today " .. clock end
  if diff == 1 then return "tomorrow " .. clock end
  if diff == -1 then return "yesterday " .. clock end
  local date = string.format("%s %d %s", WD[wd], d, MON[m])
  if y ~= ny then date = date .. " " .. y end
  return date .. " " .. clock
end

local function quoted(task) return "\"" .. tostring(task and task.title or "?") .. "\"" end

-- A task in a list: title, due, priority, tags.
local function line(task, zone, now)
  local parts = { task.title }
  local extra = {}
  if task.completed then extra[#extra + 1] = "done" end
  local due = M.when(task.due_at, zone, now)
  if due then extra[#extra + 1] = "due " .. due end
  if task.priority and task.priority ~= "none" then extra[#extra + 1] = task.priority .. " priority" end
  if type(task.tags) == "table" and #task.tags > 0 then
    extra[#extra + 1] = "#" .. table.concat(task.tags, " #")
  end
  if #extra > 0 then parts[#parts + 1] = "(" .. table.concat(extra, ", ") .. ")" end
  return table.concat(parts, " ")
end
M.line = line

local function numbered(items, zone, now, max)
  local out = {}
  for i, t in ipairs(items) do
    if i > (max or 20) then
      out[#out + 1] = "… and " .. (#items - (max or 20)) .. " more"
      break
    end
    out[#out + 1] = i .. ". " .. line(t, zone, now)
  end
  return table.concat(out, "\n")
end

local function failure(err)
  if err.code == "not_found" then return "I couldn't find that task (it may have been deleted)." end
  if err.code == "unavailable" then return "I can't reach the task store right now; please try again in a moment." end
  if err.code == "nothing_to_snooze" then
    return "No reminder of that task has fired yet, so there is nothing to snooze. "
      .. "You can give it a reminder instead, e.g. \"remind me about it 1 hour before\"."
  end
  if err.code == "task_completed" then return "That task is done; reopen it first to snooze its reminder." end
  if err.code == "reminders_unavailable" then return "Reminders are not enabled on this server." end
  return "I couldn't do that: " .. tostring(err.message) .. "."
end

local VERB = { complete_task = "Marked as done", reopen_task = "Reopened", delete_task = "Deleted" }

--- The answer for a turn.
-- @tparam table result what chat.parse returned (or the language model's turn)
-- @tparam {table,...} outcomes executed calls `{name, arguments, result}`
-- @tparam string zone
-- @tparam integer now
-- @treturn string
function M.answer(result, outcomes, zone, now)
  if result.kind == "reply" then return result.text end
  if result.kind == "choose" or result.kind == "confirm" then return result.question end
  local lines = {}
  local grouped = {}
  for _, o in ipairs(outcomes or {}) do
    local r = o.result or {}
    if r.error then
      lines[#lines + 1] = failure(r.error)
    elseif o.name == "add_task" then
      local t = r.task
      local due = M.when(t.due_at, zone, now)
      lines[#lines + 1] = "Added " .. quoted(t) .. (due and (", due " .. due) or "")
        .. ((t.priority and t.priority ~= "none") and (", " .. t.priority .. " priority") or "")
        .. ((type(t.tags) == "table" and #t.tags > 0) and (", #" .. table.concat(t.tags, " #")) or "")
        .. ((type(t.recurrence) == "table" and t.recurrence.description) and (", " .. t.recurrence.description) or "")
        .. "."
    elseif o.name == "list_tasks" then
      local items = r.items or {}
      if #items == 0 then
        lines[#lines + 1] = "No tasks match."
      else
        lines[#lines + 1] = (#items == 1 and "One task:" or (#items .. " tasks:")) .. "\n" .. numbered(items, zone, now)
      end
    elseif VERB[o.name] then
      grouped[o.name] = grouped[o.name] or {}
      table.insert(grouped[o.name], r.task)
    elseif o.name == "update_task" then
      lines[#lines + 1] = "Updated " .. quoted(r.task) .. "."
    elseif o.name == "reschedule_tasks" then
      local ts = r.tasks or {}
      local names = {}
      for i, t in ipairs(ts) do
        local due = M.when(t.due_at, zone, now)
        names[i] = quoted(t) .. (due and (" to " .. due) or "")
      end
      lines[#lines + 1] = "Moved " .. table.concat(names, ", ") .. "."
    elseif o.name == "snooze_reminder" then
      local until_at = M.when(r.remind_at, zone, now)
      lines[#lines + 1] = "Snoozed the reminder of " .. quoted(r.task)
        .. (until_at and (" until " .. until_at) or "") .. "."
    elseif o.name == "plan_day" then
      local parts = {}
      local n = 0
      local sections = { { "Overdue", r.overdue }, { "Due " .. (r.label or "that day"), r.due }, { "Next", r.next } }
      for _, section in ipairs(sections) do
        if section[2] and #section[2] > 0 then
          local names = {}
          for _, t in ipairs(section[2]) do
            n = n + 1
            names[#names + 1] = n .. ". " .. line(t, zone, now)
          end
          parts[#parts + 1] = section[1] .. ":\n" .. table.concat(names, "\n")
        end
      end
      lines[#lines + 1] = #parts == 0 and "Nothing planned: no pending tasks." or table.concat(parts, "\n")
    end
  end
  for _, name in ipairs { "complete_task", "reopen_task", "delete_task" } do
    local ts = grouped[name]
    if ts then
      local names = {}
      for i, t in ipairs(ts) do names[i] = quoted(t) end
      table.insert(lines, 1, VERB[name] .. ": " .. table.concat(names, ", ") .. ".")
    end
  end
  if #lines == 0 then return "Done." end
  return table.concat(lines, "\n")
end

return M

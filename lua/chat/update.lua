--- Changes to a task: "rename X to Y", "change the due date of X to friday", "make X
-- urgent", "tag X with work", "remove the due date from X", "stop repeating X",
-- "remind me about X an hour before" become `update_task` calls. Pure Lua.
-- @module chat.update

local json = require "json"
local words = require "chat.words"
local when = require "chat.when"
local slots = require "chat.slots"
local common = require "chat.common"

local w, mark, has, reply, calls, target, take_verb = common.w, common.mark, common.has, common.reply,
  common.calls, common.target, common.take_verb

local NULL = json.null

local M = {}

-- Fields -------------------------------------------------------------------------------

local FIELD_WORDS = { title = "title", name = "title", priority = "priority", prio = "priority",
  due = "due_at", deadline = "due_at", date = "due_at", time = "due_at", description = "description",
  notes = "description", details = "description", note = "description", tags = "tags", tag = "tags",
  recurrence = "recurrence", ["repeat"] = "recurrence", schedule = "recurrence", reminder = "reminders",
  reminders = "reminders" }

local function finish_update(env, args)
  local changes = 0
  for k in pairs(args) do if k ~= "id" then changes = changes + 1 end end
  if changes == 0 then
    return reply("need_change", "What should I change? The title, priority, tags, due time or recurrence.")
  end
  local ids, res = target(env, { name = "update_task", arguments = args })
  if not ids then return res end
  local list = {}
  for i, id in ipairs(ids) do
    local a = {}
    for k, v in pairs(args) do a[k] = v end
    a.id = id
    list[i] = { name = "update_task", arguments = a }
  end
  return calls(list)
end

-- Read the new value on the right of "to": returns true when it held a value.
local function read_value(env, args, from, field)
  local toks = env.toks
  local quoted
  for i = from, #toks do if toks[i].quoted and not env.used[toks[i]] then quoted = i end end
  if quoted and (field == nil or field == "title" or field == "description") then
    args[field or "title"] = toks[quoted].raw
    mark(env, from, #toks)
    return true
  end
  if field == "description" then
    args.description = slots.text(toks, env.used, from, #toks)
    mark(env, from, #toks)
    return args.description ~= nil
  end
  if field == "title" then
    args.title = slots.text(toks, env.used, from, #toks)
    mark(env, from, #toks)
    return args.title ~= nil
  end
  -- only the words right of "to" are read as values
  local left_used = {}
  for i = 1, from - 1 do
    if not env.used[toks[i]] then left_used[#left_used + 1] = toks[i] env.used[toks[i]] = true end
  end
  local got = false
  if field == nil or field == "priority" then
    local p = slots.priority(toks, env.used)
    if not p and field == "priority" then
      for i = from, #toks do
        local x = w(env, i)
        local lv = ({ high = "high", medium = "medium", low = "low", none = "none", normal = "medium",
          urgent = "high" })[x or ""]
        if lv then p = lv mark(env, i) break end
      end
    end
    if p then args.priority, got = p, true end
  end
  if field == nil or field == "recurrence" then
    local r = slots.recurrence(toks, env.used)
    if r then args.recurrence, got = r, true end
  end
  if field == nil or field == "due_at" then
    local s = when.scan(toks, env.used, env.clock)
    if s then args.due_at, got = when.format(env.clock, when.resolve(s, env.clock)), true end
  end
  if field == nil or field == "tags" then
    local tg = slots.tags(toks, env.used)
    if not tg and field == "tags" then
      tg = {}
      for i = from, #toks do
        local x = w(env, i)
        if x and x ~= "and" then tg[#tg + 1] = x:gsub("^#", "") mark(env, i) end
      end
      if #tg == 0 then tg = nil end
    end
    if tg then args.tags, got = tg, true end
  end
  if field == nil and not got then
    args.title = slots.text(toks, env.used, from, #toks)
    got = args.title ~= nil
  end
  for _, t in ipairs(left_used) do env.used[t] = nil end
  mark(env, from, #toks)
  return got
end

function M.handle_update(env, vi)
  local toks = env.toks
  local verb = vi and vi > 0 and toks[vi].w or nil
  local nxt = toks[(vi or 0) + 1] and toks[(vi or 0) + 1].w
  take_verb(env, vi)
  local args = {}
  local S = " " .. words.join(toks) .. " "
  -- "tag X with Y", "label X as Y"
  if verb == "tag" or verb == "label" then
    local k
    for i = #toks, vi + 1, -1 do
      if w(env, i) == "with" or w(env, i) == "as" then k = i break end
    end
    if k then
      local tags = {}
      for i = k + 1, #toks do
        local x = w(env, i)
        if x and x ~= "and" and x ~= "tag" and x ~= "tags" then tags[#tags + 1] = toks[i].raw:lower():gsub("^#", "") end
      end
      mark(env, k, #toks)
      if #tags > 0 then args.add_tags = tags end
      return finish_update(env, args)
    end
  end
  -- "tag it home", "label this errands"
  if (verb == "tag" or verb == "label") and (nxt == "it" or nxt == "this" or nxt == "that") then
    local tags = {}
    for i = vi + 2, #toks do
      local x = w(env, i)
      if x and x ~= "and" then tags[#tags + 1] = toks[i].raw:lower():gsub("^#", "") end
    end
    mark(env, vi + 2, #toks)
    if #tags > 0 then args.add_tags = tags end
    return finish_update(env, args)
  end
  if verb == "untag" then
    local tags = slots.tags(toks, env.used)
    if not tags then
      local i = has(env, "from")
      tags = {}
      if i then
        for k = vi + 1, i - 1 do if w(env, k) then tags[#tags + 1] = toks[k].w end end
        mark(env, vi + 1, i)
      end
    end
    if #tags > 0 then args.remove_tags = tags end
    return finish_update(env, args)
  end
  -- "add the work tag to X", "add #home to X", "add tag urgent to X"; "remove the work tag from X"
  if (verb == "add" or verb == "remove" or verb == "delete" or verb == "drop" or verb == "clear")
    and (S:find(" tags? ") or S:find(" #%a")) and not S:find(" description ", 1, true) then
    local sep = has(env, verb == "add" and "to" or "from") or has(env, "on") or has(env, "for")
    if sep then
      local tags = {}
      for i = vi + 1, sep - 1 do
        local x = w(env, i)
        if x and x ~= "the" and x ~= "a" and x ~= "tag" and x ~= "tags" and x ~= "label" and x ~= "and" then
          tags[#tags + 1] = toks[i].raw:lower():gsub("^#", "")
        end
      end
      mark(env, vi + 1, sep)
      if #tags > 0 then args[verb == "add" and "add_tags" or "remove_tags"] = tags end
      return finish_update(env, args)
    end
  end
  -- "remove the due date from X", "clear the deadline of X"
  if (verb == "remove" or verb == "clear" or verb == "delete" or verb == "drop")
    and (S:find(" due date ", 1, true) or S:find(" deadline ", 1, true) or S:find(" due time ", 1, true)) then
    args.due_at = NULL
    for i = vi + 1, #toks do
      local x = w(env, i)
      if x == "due" or x == "date" or x == "deadline" or x == "time" or x == "from" or x == "of" then mark(env, i) end
    end
    return finish_update(env, args)
  end
  if (verb == "remove" or verb == "clear" or verb == "delete") and S:find(" description ", 1, true) then
    args.description = NULL
    mark(env, has(env, "description"))
    local f = has(env, "from") or has(env, "of")
    if f then mark(env, f) end
    return finish_update(env, args)
  end
  if (verb == "remove" or verb == "clear" or verb == "delete") and (S:find(" recurrence ", 1, true)
    or S:find(" repeat ", 1, true)) then
    args.recurrence = NULL
    mark(env, has(env, "recurrence") or has(env, "repeat"))
    local f = has(env, "from") or has(env, "of")
    if f then mark(env, f) end
    return finish_update(env, args)
  end
  if S:find(" stop repeating ", 1, true) or S:find(" not repeat ", 1, true) or S:find(" not recurring ", 1, true)
    or S:find(" no longer repeat", 1, true) or S:find(" dont repeat ", 1, true) then
    args.recurrence = NULL
    for i = 1, #toks do
      local x = w(env, i)
      if x == "stop" or x == "repeating" or x == "not" or x == "repeat" or x == "recurring" or x == "no"
        or x == "longer" or x == "dont" or x == "make" or x == "should" or x == "repeats" then
        mark(env, i)
      end
    end
    return finish_update(env, args)
  end
  -- reminders: "remind me about X 30 minutes before", "add a reminder to X an hour before"
  local before = slots.before(toks, env.used)
  if before then
    args.reminders = { { before = before } }
    for i = 1, #toks do
      local x = w(env, i)
      if x == "me" or x == "about" or x == "reminder" or x == "a" or x == "to" or x == "for" or x == "set" then
        mark(env, i)
      end
    end
    return finish_update(env, args)
  end
  -- "add a description to X: ..." / "set the description of X to ..."
  local di = has(env, "description") or (verb == "add" and has(env, "note"))
  if di then
    mark(env, di)
    local sep = has(env, "to")
    -- the description follows ":" or the last "to"
    local colon
    for i = di, #toks do if toks[i].colon or toks[i].stop then colon = i break end end
    for i = #toks, di, -1 do if w(env, i) == "to" or w(env, i) == "as" then sep = i break end end
    if colon and verb == "add" then
      for i = di, colon do
        local x = w(env, i)
        if x == "to" or x == "for" or x == "on" then mark(env, i) end
      end
      read_value(env, args, colon + 1, "description")
    elseif sep and verb ~= "add" then
      mark(env, sep)
      read_value(env, args, sep + 1, "description")
    elseif sep then
      -- "add a description to X saying Y"
      local say = has(env, "saying") or has(env, "that")
      if say then
        mark(env, say)
        read_value(env, args, say + 1, "description")
      end
      mark(env, sep)
    end
    return finish_update(env, args)
  end
  -- "change/rename/set <ref> [field] to <value>"
  local field
  if verb == "rename" or verb == "retitle" then field = "title" end
  local sep
  for i = (vi or 0) + 1, #toks do
    if w(env, i) == "to" and w(env, i + 1) ~= "do" then sep = i break end
  end
  if not sep and (verb == "rename" or verb == "call") then
    sep = has(env, "as")
  end
  if sep then
    for i = (vi or 0) + 1, sep - 1 do
      local x = w(env, i)
      if x and FIELD_WORDS[x] then
        field = field or FIELD_WORDS[x]
        mark(env, i)
        if w(env, i + 1) == "of" or w(env, i + 1) == "for" then mark(env, i + 1) end
        if x == "due" and w(env, i + 1) == "date" then mark(env, i + 1) end
      end
    end
    mark(env, sep)
    read_value(env, args, sep + 1, field)
    return finish_update(env, args)
  end
  -- "rename X 'new title'"
  if field == "title" then
    for i = (vi or 0) + 1, #toks do
      if toks[i].quoted then args.title = toks[i].raw mark(env, i) end
    end
    return finish_update(env, args)
  end
  -- slots anywhere: "make the report urgent", "set the dentist for friday at 3pm"
  args.recurrence = slots.recurrence(toks, env.used)
  args.priority = slots.priority(toks, env.used)
  local tags = slots.tags(toks, env.used)
  if tags then args.add_tags = tags end
  local s = when.scan(toks, env.used, env.clock)
  if s then args.due_at = when.format(env.clock, when.resolve(s, env.clock)) end
  for i = 1, #toks do
    local x = w(env, i)
    if x == "is" or x == "make" or x == "it" and i == #toks or x == "as" or x == "mark" or x == "set"
      or x == "priority" or x == "due" or x == "have" or x == "be" or x == "should" or x == "repeat" then
      mark(env, i)
    end
  end
  return finish_update(env, args)
end


return M

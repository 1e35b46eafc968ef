--- Lists: the filters a message names (status, overdue, due dates, priority, tags,
-- search words, sort) for `list_tasks`, and the groups of "complete all overdue tasks" or
-- "delete all completed tasks" chosen among the user's tasks by the same filters.
-- Pure Lua.
-- @module chat.listing

local tz = require "tz"
local words = require "chat.words"
local when = require "chat.when"
local slots = require "chat.slots"
local refs = require "chat.refs"
local common = require "chat.common"
local intents = require "chat.intent"

local w, mark, has, call, take_verb, known_tags = common.w, common.mark, common.has, common.call, common.take_verb,
  common.known_tags
local VERB, FILLER = intents.VERB, intents.FILLER

local M = {}

local STATUS_DONE = { completed = true, done = true, finished = true, complete = true, closed = true,
  ticked = true, checked = true, finish = true }
local NEGATION = { ["not"] = true, havent = true, didnt = true, isnt = true, arent = true, hasnt = true,
  nt = true, never = true }
local STATUS_OPEN = { pending = true, open = true, remaining = true, left = true, outstanding = true,
  incomplete = true, unfinished = true, uncompleted = true, undone = true, active = true, todo = true,
  ["not"] = true, still = true, upcoming = true, current = true }

-- List ---------------------------------------------------------------------------------

local SORTS = { priority = "priority", importance = "priority", due = "due", deadline = "due",
  date = "due", title = "title", name = "title", alphabetically = "title", newest = "created",
  created = "created", updated = "updated" }

-- Filters of a list request (also the group filters of "delete all completed tasks").
function M.list_filters(env)
  local f = {}
  local toks = env.toks
  for i = 1, #toks do
    local x = w(env, i)
    if x then
      local nxt = w(env, i + 1)
      local prev = i > 1 and toks[i - 1].w
      if NEGATION[x] and (nxt == "done" or nxt == "completed" or nxt == "finished" or nxt == "complete"
        or nxt == "finish") then
        f.status = "pending"
        mark(env, i, i + 1)
      elseif (x == "done" or x == "finished") and (prev == "be" or prev == "get" or prev == "gets") then
        f.status = "pending"
        mark(env, i)
      elseif x == "remains" or x == "remain" then
        f.status = "pending"
        mark(env, i)
      elseif STATUS_DONE[x] and not (x == "done" and w(env, i - 1) == "to") then
        f.status = "completed"
        mark(env, i)
      elseif STATUS_OPEN[x] and x ~= "not" and x ~= "still" and x ~= "todo" then
        f.status = "pending"
        mark(env, i)
      elseif (x == "to" and nxt == "do") or (x == "left" and nxt == "to") or x == "still" then
        f.status = "pending"
        mark(env, i, nxt == "do" and i + 1 or i)
      elseif x == "overdue" or (x == "late" and i > 1) or (x == "past" and nxt == "due") then
        f.overdue = true
        mark(env, i, x == "past" and i + 1 or i)
      elseif (x == "by" or x == "sort" or x == "sorted" or x == "order" or x == "ordered") and SORTS[nxt or ""] then
        f.sort = SORTS[nxt]
        mark(env, i, i + 1)
        if w(env, i + 2) == "date" then mark(env, i + 2) end
      elseif x == "alphabetically" then
        f.sort = "title"
        mark(env, i)
      end
    end
  end
  local p = slots.priority(toks, env.used)
  if not p then
    local i = has(env, "high") or has(env, "low") or has(env, "medium")
    if i and (w(env, i + 1) == "tasks" or w(env, i + 1) == "ones" or w(env, i + 1) == "items"
      or w(env, i + 1) == "prio") then
      p = toks[i].w
      mark(env, i)
    end
  end
  if p then f.priority = { p } end
  local tags = slots.tags(toks, env.used) or {}
  local known = known_tags(env)
  for i = 1, #toks do
    local x = w(env, i)
    local nxt = w(env, i + 1)
    if x and known[x] and (nxt == "tasks" or nxt == "task" or nxt == "items" or nxt == "stuff"
      or nxt == "things" or nxt == "todos" or nxt == "list" or nxt == "ones"
      or w(env, i - 1) == "for" or w(env, i - 1) == "in" or w(env, i - 1) == "about") then
      tags[#tags + 1] = x
      mark(env, i)
    end
  end
  if #tags > 0 then f.tags = tags end
  return f
end

local SEARCH_MARKS = { about = true, mentioning = true, containing = true, ["for"] = true,
  regarding = true, with = true, matching = true, called = true, named = true, titled = true,
  related = true, involving = true }

function M.handle_list(env, vi)
  take_verb(env, vi)
  local toks = env.toks
  local f = M.list_filters(env)
  local args = {}
  local s = when.scan(toks, env.used, env.clock)
  if s and (s.dn or s.abs) then
    local c = env.clock
    local first = s.dn or c.today
    args.due_after = when.format_bound(c, when.instant(c, first, 0, 0))
    args.due_before = when.format_bound(c, when.instant(c, first + (s.span or 1), 0, 0))
    if not f.status then f.status = "pending" end
  end
  -- search words: "find the dentist", "tasks about taxes", "anything mentioning mom"
  local verb = vi and vi > 0 and toks[vi].w
  local q_from
  for i = 1, #toks do
    local x = w(env, i)
    if x and SEARCH_MARKS[x] and w(env, i + 1) and not (x == "for" and (w(env, i + 1) == "me")) then
      if x ~= "with" or has(env, "title") or has(env, "word") then q_from = i + 1 break end
    end
  end
  if verb == "find" or verb == "search" or verb == "look" or verb == "lookup" then q_from = q_from or vi + 1 end
  if q_from then
    local parts = {}
    for i = q_from, #toks do
      local t = toks[i]
      if not env.used[t] and not refs.STOP[t.w] and not SEARCH_MARKS[t.w] and t.w ~= "title"
        and t.w ~= "word" and t.w ~= "in"
        and t.w ~= "show" and t.w ~= "any" and t.w ~= "anything" and t.w ~= "related" then
        parts[#parts + 1] = t.raw
      end
    end
    if #parts > 0 then args.q = table.concat(parts, " ") end
  end
  if f.status and f.status ~= "all" then args.status = f.status end
  args.priority, args.tags, args.overdue, args.sort = f.priority, f.tags, f.overdue, f.sort
  if args.overdue then args.status = nil end
  return call("list_tasks", args)
end

-- Groups -------------------------------------------------------------------------------

local STATE_WORDS = { as = true, done = true, complete = true, completed = true, finished = true,
  off = true, again = true, ["not"] = true, incomplete = true, undone = true, pending = true,
  unfinished = true, open = true, uncompleted = true, is = true, are = true, with = true,
  ["from"] = true, list = true, my = true, todo = true, ["for"] = true, good = true, now = true,
  please = true, yet = true, isnt = true }

-- "all", "everything", "every task": a group chosen by filters.
function M.group_of(env, intent)
  local S = " " .. words.join(env.toks) .. " "
  if not (S:find(" all ", 1, true) or S:find(" everything ", 1, true) or S:find(" every task ", 1, true)
    or S:find(" clear completed ", 1, true) or S:find(" clear finished ", 1, true)
    or S:find(" clear done ", 1, true) or S:find(" each ", 1, true)) then
    return nil
  end
  if S:find(" all of them ", 1, true) or S:find(" them all ", 1, true) or S:find(" all those ", 1, true)
    or S:find(" all these ", 1, true) then
    return nil
  end
  local f = M.list_filters(env)
  -- title words left: "all meeting tasks"
  local keys = {}
  for _, t in ipairs(env.toks) do
    if not env.used[t] and not refs.STOP[t.w] and not VERB[t.w] and not STATE_WORDS[t.w] and not FILLER[t.w] then
      keys[#keys + 1] = t.w
    end
  end
  local pool = env.tasks
  if #keys > 0 then pool = refs.by_words(keys, env.tasks) end
  local out = {}
  local c = env.clock
  for _, task in ipairs(pool) do
    local ok = true
    if f.status == "completed" and not task.completed then ok = false end
    if f.status == "pending" and task.completed then ok = false end
    if intent == "complete" and task.completed then ok = false end
    if intent == "reopen" and not task.completed then ok = false end
    if f.overdue then
      local due = type(task.due_at) == "string" and tz.parse_rfc3339(task.due_at)
      if task.completed or not due or due >= c.now then ok = false end
    end
    for _, tag in ipairs(f.tags or {}) do
      local has_tag = false
      for _, t in ipairs(task.tags or {}) do if t == tag then has_tag = true end end
      if not has_tag then ok = false end
    end
    if f.priority and task.priority ~= f.priority[1] then ok = false end
    if ok then out[#out + 1] = task.id end
  end
  return out
end

M.STATE_WORDS = STATE_WORDS

return M

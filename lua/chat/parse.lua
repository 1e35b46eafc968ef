--- The offline assistant's understanding: an English message becomes tool calls (see
-- chat.tools), a question (which task? are you sure?) or a short reply. A pure function
-- of (text, conversation context, now, zone, the user's candidate tasks), so it is
-- tested on its own (spec/chat) and costs no I/O.
--
-- The context is what the conversation remembers between turns (chat.context):
-- `last_list` (ids in the order last shown), `last_ids` (the tasks last acted on) and
-- `pending` (a question waiting for its answer).
-- @module chat.parse

local words = require "chat.words"
local when = require "chat.when"
local slots = require "chat.slots"
local refs = require "chat.refs"
local common = require "chat.common"
local intents = require "chat.intent"
local listing = require "chat.listing"
local update = require "chat.update"

local calls, call, reply, choose, confirm = common.calls, common.call, common.reply, common.choose, common.confirm
local w, mark, take_verb, not_found, target = common.w, common.mark, common.take_verb, common.not_found,
  common.target

local M = {}

--- Longest message read, in bytes (longer ones get a reply, not a parse).
M.MAX_BYTES = 2000

--- What the assistant can do, in one sentence with examples.
M.HELP = common.HELP

-- Add ----------------------------------------------------------------------------------

local ADD_LEAD = { a = true, an = true, new = true, task = true, todo = true, item = true, to = true,
  called = true, named = true, titled = true, that = true, i = true, me = true, need = true,
  have = true, remember = true, dont = true, forget = true, must = true, should = true,
  ["for"] = true, reminder = true, note = true, about = true, one = true, entry = true,
  ["do"] = true, gotta = true, got = true, quick = true, please = true, myself = true }

--- The task fields of a phrase: title, priority, tags, due_at, recurrence, reminders.
-- Used for "add ..." messages and by `POST /api/parse`.
-- @tparam table env the reading state (toks, used, clock)
-- @tparam integer from first token of the phrase
-- @treturn table|nil fields (title may be nil when only slots were found)
local function task_fields(env, from)
  local toks = env.toks
  -- "to my shopping list": a list name becomes a tag
  for i = from, #toks - 2 do
    local a, b, c, d = w(env, i), w(env, i + 1), w(env, i + 2), w(env, i + 3)
    if (a == "to" or a == "on" or a == "in") and (b == "my" or b == "the") then
      if c == "list" or c == "tasks" or ((c == "todo" or c == "task") and (d == "list" or d == nil)) then
        mark(env, i, (d == "list") and i + 3 or i + 2)
      elseif c and d == "list" and i + 3 == #toks and not env.toks[i + 2].quoted then
        env.list_tag = c
        mark(env, i, i + 3)
      end
    end
  end
  local out = {}
  out.recurrence = slots.recurrence(toks, env.used)
  local before = slots.before(toks, env.used)
  out.priority = slots.priority(toks, env.used)
  out.tags = slots.tags(toks, env.used)
  if env.list_tag then
    out.tags = out.tags or {}
    table.insert(out.tags, env.list_tag)
  end
  local quoted
  for i = from, #toks do
    if toks[i].quoted and not env.used[toks[i]] then quoted = i break end
  end
  local s = when.scan(toks, env.used, env.clock)
  if s then out.due_at = when.format(env.clock, when.resolve(s, env.clock)) end
  if out.recurrence and not out.due_at then
    local rrule = require "recurrence"
    local c = env.clock
    local start = when.instant(c, c.today, 9, 0)
    local first = rrule.next_after(out.recurrence, start, c.zone, c.now, true)
    if first then out.due_at = when.format(c, first) end
  end
  if before then out.reminders = { { before = before } } end
  if quoted then
    out.title = toks[quoted].raw
  else
    local i = from
    while w(env, i) and ADD_LEAD[w(env, i)] and not toks[i].fixed do mark(env, i) i = i + 1 end
    out.title = slots.text(toks, env.used, from, #toks)
  end
  return out
end
M.task_fields = task_fields

local function handle_add(env, vi)
  take_verb(env, vi)
  local f = task_fields(env, (vi or 0) + 1)
  if not f.title then
    return reply("need_title", "What should the task be called? For example: \"add buy milk tomorrow\".")
  end
  local args = { title = f.title }
  for _, k in ipairs { "priority", "tags", "due_at", "recurrence", "reminders" } do args[k] = f[k] end
  return call("add_task", args)
end

-- Complete, reopen, delete ------------------------------------------------------------

local NAMES = { complete = "complete_task", reopen = "reopen_task", delete = "delete_task" }

local function handle_state(env, vi, intent)
  take_verb(env, vi)
  local name = NAMES[intent]
  local ids = listing.group_of(env, intent)
  if ids then
    if #ids == 0 then
      return reply("not_found", "There are no tasks like that.")
    end
  else
    -- "check off", "get rid of", "cross off", "forget about"
    for i = 1, #env.toks do
      local x = w(env, i)
      if x and listing.STATE_WORDS[x] and not env.toks[i].quoted then mark(env, i) end
      if x == "rid" or x == "about" and i == (vi or 0) + 1 then mark(env, i) end
    end
    local r = refs.resolve({ toks = env.toks, used = env.used, tasks = env.tasks, ctx = env.ctx,
      prefer = intent == "complete" and "pending" or intent == "reopen" and "completed" or nil }, 1, #env.toks)
    local last = env.ctx.last_ids
    if r.none and last and #last == 1 then r = { ids = { last[1] } } end
    if r.none then
      local verb = intent == "delete" and "delete" or intent == "reopen" and "reopen" or "complete"
      return reply("need_ref", "Which task should I " .. verb .. "? Give its number or a word of its title.")
    end
    if r.not_found then return not_found(r.not_found) end
    if r.ambiguous then return choose(env, { name = name, arguments = {} }, r.ambiguous) end
    ids = r.ids
  end
  local list = {}
  for i, id in ipairs(ids) do list[i] = { name = name, arguments = { id = id } } end
  if intent == "delete" and #list > 1 then return confirm(env, list) end
  return calls(list)
end

-- Reschedule ---------------------------------------------------------------------------

local PARTS_OF_DAY = { morning = { 0, 12 }, afternoon = { 12, 17 }, evening = { 17, 24 }, night = { 17, 24 } }

local function handle_reschedule(env, vi)
  take_verb(env, vi)
  local toks = env.toks
  local c = env.clock
  local s = when.scan(toks, env.used, c)
  if not s then
    return reply("need_when", "To when? For example: \"move it to friday\" or \"to 2 PM\".")
  end
  local args = {}
  if s.abs or (s.dn and (s.h or s.part)) then
    args.due_at = when.format(c, when.resolve(s, c))
  elseif s.dn then
    args.date = when.date_text(s.dn)
  else
    args.time = when.time_text(s)
  end
  -- "my morning meetings": a part of the day narrows the tasks by their due time
  local part
  for i = 1, #toks do
    local x = w(env, i)
    if x and PARTS_OF_DAY[x] then part = PARTS_OF_DAY[x] mark(env, i) end
    if x == "back" or x == "forward" or x == "out" or x == "over" or x == "until" or x == "till" then mark(env, i) end
  end
  local S = " " .. words.join(toks) .. " "
  local plural = S:find(" all ", 1, true) or S:find(" my %a+s ") or S:find(" the %a+s ") or part
  local f = plural and listing.list_filters(env) or {}
  local keys = {}
  for _, t in ipairs(toks) do
    if not env.used[t] and not refs.STOP[t.w] then keys[#keys + 1] = t.w end
  end
  local ids
  if plural and (#keys > 0 or f.tags) then
    local found = #keys > 0 and refs.by_words(keys, env.tasks) or env.tasks
    ids = {}
    local tz = require "tz"
    for _, task in ipairs(found) do
      local ok = not task.completed
      for _, tag in ipairs(f.tags or {}) do
        local has_tag = false
        for _, x in ipairs(task.tags or {}) do if x == tag then has_tag = true end end
        if not has_tag then ok = false end
      end
      if ok and part then
        local due = type(task.due_at) == "string" and tz.parse_rfc3339(task.due_at)
        if not due then
          ok = false
        else
          local _, _, _, h = tz.to_local(due, c.zone)
          ok = h >= part[1] and h < part[2]
        end
      end
      if ok then ids[#ids + 1] = task.id end
    end
    if #ids == 0 then return not_found(table.concat(keys, " ")) end
  else
    local res
    ids, res = target(env, { name = "reschedule_tasks", arguments = args }, "pending")
    if not ids then
      if res.kind == "choose" then res.pending.field = "ids" end
      return res
    end
  end
  args.ids = ids
  return call("reschedule_tasks", args)
end

-- Snooze, plan -------------------------------------------------------------------------

local function handle_snooze(env, vi)
  take_verb(env, vi)
  local toks = env.toks
  local args = {}
  local d = slots.duration(toks, env.used)
  if d then
    args["for"] = d
  else
    local s = when.scan(toks, env.used, env.clock)
    if s then args["until"] = when.format(env.clock, when.resolve(s, env.clock)) else args["for"] = "PT10M" end
  end
  for i = 1, #toks do
    local x = w(env, i)
    if x == "reminder" or x == "reminders" or x == "alarm" or x == "notification" or x == "until" or x == "for"
      or x == "again" or ((x == "about" or x == "of") and i == vi + 1) then
      mark(env, i)
    end
  end
  local ids, res = target(env, { name = "snooze_reminder", arguments = args })
  if not ids then return res end
  args.id = ids[1]
  return call("snooze_reminder", args)
end

local function handle_plan(env)
  local s = when.scan(env.toks, env.used, env.clock)
  if s and s.dn and s.dn ~= env.clock.today then return call("plan_day", { date = when.date_text(s.dn) }) end
  return call("plan_day", {})
end

-- Pending questions --------------------------------------------------------------------

local YES = { yes = true, ok = true, sure = true, confirm = true, confirmed = true, yea = true, absolutely = true,
  ["do"] = true, go = true, please = true, correct = true, right = true, definitely = true, it = true,
  delete = true, them = true, all = true, ahead = true, fine = true, proceed = true }
local NO = { no = true, cancel = true, stop = true, ["not"] = true, dont = true, never = true, nevermind = true,
  abort = true, keep = true, wait = true, mind = true }

local function answer_pending(env)
  local p = env.ctx.pending
  local toks = env.toks
  if p.kind == "confirm" then
    local yes, no = 0, 0
    for _, t in ipairs(toks) do
      if NO[t.w] then no = no + 1 elseif YES[t.w] then yes = yes + 1 end
    end
    if no > 0 and #toks <= 5 then
      return reply("cancelled", "OK, I left them alone.")
    end
    if yes > 0 and yes == #toks then return calls(p.calls) end
    return nil
  end
  if p.kind == "choose" then
    local cand = {}
    for _, id in ipairs(p.candidates) do cand[#cand + 1] = env.by_id[id] or { id = id, title = "" } end
    local no = #toks <= 3
    for _, t in ipairs(toks) do if not NO[t.w] then no = false end end
    if no then return reply("cancelled", "OK, never mind.") end
    local S = " " .. words.join(toks) .. " "
    local all = S:find(" all ", 1, true) or S:find(" both ", 1, true) or S:find(" each ", 1, true)
    local r
    if all and #toks <= 4 then
      r = { ids = p.candidates }
    else
      local used = {}
      r = refs.resolve({ toks = toks, used = used, tasks = cand, ctx = { last_list = p.candidates } }, 1, #toks)
    end
    if r.ids then
      local out = {}
      local the_call = p.call
      if p.field == "ids" then
        local a = {}
        for k, v in pairs(the_call.arguments) do a[k] = v end
        a.ids = r.ids
        return calls { { name = the_call.name, arguments = a } }
      end
      for i, id in ipairs(r.ids) do
        local a = {}
        for k, v in pairs(the_call.arguments) do a[k] = v end
        a.id = id
        out[i] = { name = the_call.name, arguments = a }
      end
      if the_call.name == "delete_task" and #out > 1 then return confirm(env, out) end
      return calls(out)
    end
    if r.ambiguous and #r.ambiguous < #p.candidates then
      return choose(env, p.call, r.ambiguous, p.field)
    end
    return nil
  end
  return nil
end

-- Entry --------------------------------------------------------------------------------

local HANDLERS = {
  add = handle_add, list = listing.handle_list, update = update.handle_update, reschedule = handle_reschedule,
  snooze = handle_snooze, plan = handle_plan,
  complete = function(env, vi) return handle_state(env, vi, "complete") end,
  reopen = function(env, vi) return handle_state(env, vi, "reopen") end,
  delete = function(env, vi) return handle_state(env, vi, "delete") end,
  greeting = function() return reply("greeting", "Hi! " .. M.HELP) end,
  thanks = function() return reply("thanks", "You're welcome!") end,
  help = function() return reply("help", M.HELP) end,
  nothing_pending = function()
    return reply("nothing_pending", "There is nothing waiting for an answer. " .. M.HELP)
  end,
  unknown = function() return reply("unknown", "Sorry, I didn't understand that. " .. M.HELP) end,
}

local function new_env(text, ctx, now, zone, tasks)
  local by_id = {}
  for _, t in ipairs(tasks) do by_id[t.id] = t end
  return { toks = words.tokens(text), used = {}, tasks = tasks, by_id = by_id, ctx = ctx,
    clock = when.clock(now, zone) }
end

local function check_text(text)
  if type(text) ~= "string" then error("text must be a string", 3) end
  if #text > M.MAX_BYTES then
    return reply("too_long", "That message is too long for me (over " .. M.MAX_BYTES .. " bytes). "
      .. "Tell me one thing at a time, like \"add buy milk tomorrow\".")
  end
  if not utf8.len(text) or text:find("%z") then
    return reply("invalid_text", "I can only read UTF-8 text without NUL bytes. Could you type that again?")
  end
  return nil
end

--- Understand one message.
-- @tparam string text the user's message
-- @tparam[opt] table ctx the conversation context (`last_list`, `last_ids`, `pending`)
-- @tparam integer now epoch seconds
-- @tparam string zone the user's IANA zone
-- @tparam[opt] {table,...} tasks the user's tasks `{id, title, completed, priority, tags, due_at}`
--   in the order "task N" counts them when no list was shown
-- @treturn table `{kind = "calls", calls = {{name, arguments}, ...}}`, or
--   `{kind = "choose"|"confirm", question, pending, ...}`, or `{kind = "reply", reply, text}`
function M.parse(text, ctx, now, zone, tasks)
  local bad = check_text(text)
  if bad then return bad end
  local env = new_env(text, ctx or {}, now, zone, tasks or {})
  if #env.toks == 0 then return reply("empty", M.HELP) end
  if env.ctx.pending then
    local r = answer_pending(env)
    if r then return r end
    env.used = {}
  end
  local kind, vi = intents.detect(env)
  return HANDLERS[kind](env, vi)
end

--- The task a quick-add phrase describes ("Pay rent every 1st at 9am p1 #home"), without
-- creating it: title, priority, tags, due_at, recurrence, reminders.
-- @treturn[1] table the fields
-- @treturn[2] nil
-- @treturn[2] string what is wrong
function M.quick_add(text, now, zone)
  local bad = check_text(text)
  if bad then return nil, bad.text end
  local env = new_env(text, {}, now, zone, {})
  if #env.toks == 0 then return nil, "the text is empty" end
  local f = task_fields(env, 1)
  if not f.title then return nil, "the text has no title, only " .. "a time, tags or a priority" end
  return f
end

return M

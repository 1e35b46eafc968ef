--- The offline assistant's understanding: an English message becomes tool calls (see
-- chat.tools), a question (which task? are you sure?) or a short reply. A pure function
-- of (text, conversation context, now, zone, the user's candidate tasks), so it is
-- tested on its own (spec/chat) and costs no I/O.
--
-- The context is what the conversation remembers between turns (chat.context):
-- `last_list` (ids in the order last shown), `last_ids` (the tasks last acted on) and
-- `pending` (a question waiting for its answer).
-- @module chat.parse

local json = require "json"
local words = require "chat.words"
local when = require "chat.when"
local slots = require "chat.slots"
local refs = require "chat.refs"

local M = {}

--- Longest message read, in bytes (longer ones get a reply, not a parse).
M.MAX_BYTES = 2000

local NULL = json.null

-- Results ------------------------------------------------------------------------------

local function calls(list) return { kind = "calls", calls = list } end
local function call(name, args) return calls { { name = name, arguments = args } } end

M.HELP = "I can add tasks (\"add buy milk tomorrow at 5pm #home\"), show them (\"what's pending?\", "
  .. "\"what's due today?\"), complete, reopen, delete or change them (\"mark task 3 as done\", "
  .. "\"rename the second one to 'Call mom'\"), reschedule (\"move my morning meetings to 2 PM\"), "
  .. "snooze a reminder and plan your day."

local function reply(kind, text) return { kind = "reply", reply = kind, text = text } end

local function title_of(env, id)
  local t = env.by_id[id]
  return t and t.title or id
end

local function choose(env, the_call, ids, field)
  local names = {}
  for i, id in ipairs(ids) do
    if i > 10 then break end
    names[#names + 1] = i .. ". " .. title_of(env, id)
  end
  return {
    kind = "choose", candidates = ids,
    question = "Which one do you mean? " .. table.concat(names, "; ") .. ".",
    pending = { kind = "choose", call = the_call, candidates = ids, field = field or "id" },
  }
end

local function confirm(env, list)
  local names = {}
  for i, c in ipairs(list) do
    if i > 10 then names[#names + 1] = "and " .. (#list - 10) .. " more" break end
    names[#names + 1] = "\"" .. title_of(env, c.arguments.id) .. "\""
  end
  return {
    kind = "confirm", calls = list,
    question = "Delete these " .. #list .. " tasks: " .. table.concat(names, ", ") .. "? Say yes to confirm.",
    pending = { kind = "confirm", calls = list },
  }
end

-- Token helpers ------------------------------------------------------------------------

local function w(env, i)
  local t = env.toks[i]
  return t and not env.used[t] and t.w or nil
end
local function mark(env, i, j)
  for k = i, j or i do if env.toks[k] then env.used[env.toks[k]] = true end end
end
local function has(env, word)
  for i, t in ipairs(env.toks) do if t.w == word and not env.used[t] then return i end end
  return nil
end

-- Words that lead into a request without meaning anything themselves.
local FILLER = {}
for x in ([[please can could would will you kindly hey hi ok so now also then just quickly i id
  want like to lets let us go ahead oh um hmm and assistant bot hello yo ive im actually
  wanna gonna dear sir maybe really pretty]]):gmatch("%S+") do FILLER[x] = true end

local VERB = {}
local function verbs(intent, list) for x in list:gmatch("%S+") do VERB[x] = intent end end
verbs("add", "add create new make remind remember need note put schedule track log jot capture "
  .. "insert append must gotta have got should dont write")
verbs("list", "show list display view see get what whats which how give tell any anything are is "
  .. "find search look lookup pull my do whatre wheres")
verbs("complete", "complete finish finished mark check tick cross done close completed did")
verbs("reopen", "reopen uncomplete undo unmark restore unfinish uncheck undone reactivate")
verbs("delete", "delete remove erase drop trash cancel forget clear discard scrap rid del rm nuke")
verbs("update", "change update edit rename set modify tag label untag prioritize retitle stop")
verbs("reschedule", "reschedule move postpone push delay shift bump defer")
verbs("snooze", "snooze")
verbs("plan", "plan prioritise")

local STATUS_DONE = { completed = true, done = true, finished = true, complete = true, closed = true,
  ticked = true, checked = true, finish = true }
local NEGATION = { ["not"] = true, havent = true, didnt = true, isnt = true, arent = true, hasnt = true,
  nt = true, never = true }
local STATUS_OPEN = { pending = true, open = true, remaining = true, left = true, outstanding = true,
  incomplete = true, unfinished = true, uncompleted = true, undone = true, active = true, todo = true,
  ["not"] = true, still = true, upcoming = true, current = true }

-- The user's tags, for "show my work tasks".
local function known_tags(env)
  if not env.tags then
    local t = {}
    for _, task in ipairs(env.tasks) do
      for _, tag in ipairs(task.tags or {}) do t[tag] = true end
    end
    env.tags = t
  end
  return env.tags
end

-- Intent -------------------------------------------------------------------------------

-- Words that show a question is about tasks ("what's the weather" is not).
local CUES = {}
for x in ([[task tasks todo todos list lists pending completed complete done finished due overdue late
  left remaining open outstanding incomplete unfinished priority urgent important tagged everything all
  my have scheduled planned today tomorrow tonight week weekend month anything items agenda upcoming
  next do finish]]):gmatch("%S+") do CUES[x] = true end

local function list_cues(env, S)
  for _, t in ipairs(env.toks) do
    if CUES[t.w] or t.raw:match("^#%a") or when.WEEKDAYS[t.w] then return true end
  end
  local known = known_tags(env)
  for _, t in ipairs(env.toks) do if known[t.w] then return true end end
  return S:find(" to do ", 1, true) ~= nil
end

local function plan_words(S)
  return S:find(" plan my day ", 1, true) or S:find(" plan the day ", 1, true)
    or S:find(" plan for ", 1, true) or S:find(" plan today ", 1, true) or S:find(" plan tomorrow ", 1, true)
    or S:find(" what should i ", 1, true) or S:find(" whats my plan ", 1, true)
    or S:find(" agenda ", 1, true) or S:find(" on my plate ", 1, true) or S:find(" plan my ", 1, true)
    or S:find(" my day look ", 1, true) or S:find(" what to do today ", 1, true)
    or S:find(" where do i start ", 1, true) or S:find(" what do i do first ", 1, true)
    or S:find(" focus on today ", 1, true) or S:find(" my plan ", 1, true)
    or S:find(" prioritize my ", 1, true) or S:find(" help me plan ", 1, true)
end

local GREETING = { hi = true, hello = true, hey = true, morning = true, evening = true, afternoon = true,
  good = true, yo = true, hiya = true, howdy = true, there = true, bot = true, assistant = true }

-- The intent and the index of the word that carries it.
local function detect(env)
  local toks = env.toks
  local S = " " .. words.join(toks) .. " "
  local n = #toks
  -- conversation
  local only_greeting = true
  for _, t in ipairs(toks) do if not GREETING[t.w] then only_greeting = false end end
  if only_greeting then return "greeting" end
  if S:find(" thanks ", 1, true) or S:find(" thank you ", 1, true) or S:find(" cheers ", 1, true) then
    if n <= 5 then return "thanks" end
  end
  if S == " help " or S:find(" what can you do ", 1, true) or S:find(" how does this work ", 1, true)
    or S:find(" what do you do ", 1, true) or S:find(" commands ", 1, true) or S:find(" how do i use ", 1, true)
    or S == " help me " or S == " what can i say " then
    return "help"
  end
  if n <= 2 and (S == " yes " or S == " no " or S == " yes please " or S == " no thanks "
    or S == " ok " or S == " sure ") then
    return "nothing_pending"
  end
  if S:find(" snooze ", 1, true) then return "snooze", has(env, "snooze") end
  if plan_words(S) then return "plan", 1 end
  -- the first word that is not a filler
  local i = 1
  while i <= n and FILLER[toks[i].w] do
    -- "i want to see", "can you add": fillers; but "i need", "i have to", "i did" stop here
    i = i + 1
  end
  local v = toks[i] and toks[i].w
  local intent = v and VERB[v]
  local nxt = toks[i + 1] and toks[i + 1].w
  if intent == "add" then
    if v == "make" and not (nxt == "a" or nxt == "new" or nxt == "an") then intent = "update" end
    if v == "have" and nxt ~= "to" then intent = (nxt == "i") and "list" or nil end
    if v == "got" and nxt ~= "to" then intent = nil end
    if v == "should" then intent = (nxt == "i") and "plan" or "add" end
    if v == "need" and nxt ~= "to" then intent = nil end
    if v == "dont" and nxt ~= "forget" then intent = nil end
    if v == "remind" and S:find(" before ", 1, true) and not S:find(" remind me to ", 1, true) then
      intent = "update"
    end
    if v == "add" and (nxt == "tag" or nxt == "tags" or nxt == "label"
      or (toks[i + 1] and toks[i + 1].raw:match("^#%a"))
      or ((nxt == "the" or nxt == "a") and toks[i + 3] and (toks[i + 3].w == "tag" or toks[i + 3].w == "label"))
      or ((nxt == "a" or nxt == "the") and toks[i + 2] and (toks[i + 2].w == "description" or toks[i + 2].w == "note"
        and S:find(" to ", 1, true)))
      or ((nxt == "a" or nxt == "the") and toks[i + 2] and toks[i + 2].w == "reminder"
        and S:find(" before ", 1, true))) then
      intent = "update"
    end
  elseif intent == "list" then
    if v == "get" and nxt == "rid" then return "delete", i end
    if v == "give" and S:find(" priority ", 1, true) and nxt ~= "me" then return "update", i end
    if not (list_cues(env, S) or v == "find" or v == "search" or v == "look" or v == "lookup") then
      return "unknown"
    end
    if (v == "is" or v == "are") and not (nxt == "there" or nxt == "anything") then
      intent = nil
    end
    if v == "do" and nxt ~= "i" then intent = nil end
    if v == "my" and not (S:find(" tasks ", 1, true) or S:find(" list ", 1, true) or S:find(" todo ", 1, true)) then
      intent = nil
    end
    if v == "how" and nxt ~= "many" then intent = nil end
  elseif intent == "complete" then
    if v == "completed" and (nxt == nil or nxt == "tasks" or nxt == "ones" or nxt == "items") then intent = "list" end
    if v == "check" and nxt ~= "off" and nxt ~= "task" then intent = "list" end
    if v == "mark" then
      local rest = " " .. words.join(toks, i + 1) .. " "
      if rest:find(" not ", 1, true) or rest:find(" incomplete ", 1, true) or rest:find(" undone ", 1, true)
        or rest:find(" pending ", 1, true) or rest:find(" unfinished ", 1, true) or rest:find(" open ", 1, true)
        or rest:find(" uncompleted ", 1, true) or rest:find(" todo ", 1, true) then
        intent = "reopen"
      elseif not (rest:find(" done ", 1, true) or rest:find(" complete ", 1, true)
        or rest:find(" completed ", 1, true) or rest:find(" finished ", 1, true)
        or rest:find(" off ", 1, true)) then
        intent = "update"
      end
    end
  elseif intent == "delete" then
    local rest = " " .. words.join(toks, i + 1) .. " "
    if v == "remove" or v == "clear" or v == "drop" or v == "delete" then
      if rest:find("^ the due date ") or rest:find("^ due date ") or rest:find("^ the deadline ")
        or rest:find("^ the [%w#]+ tag ") or rest:find("^ tag ") or rest:find("^ the tag ")
        or rest:find("^ #") or rest:find("^ the reminders? ") or rest:find("^ the description ")
        or rest:find("^ the recurrence ") or rest:find("^ the priority ") or rest:find("^ the due time ") then
        intent = "update"
      end
    end
  end
  -- "set call mom back to pending", "change task 2 to done"
  if intent == "update" or intent == "reschedule" then
    if S:find(" to pending $") or S:find(" as pending $") or S:find(" to not done $") or S:find(" to incomplete $")
      or S:find(" to open $") or S:find(" as not done $") or S:find(" to undone $") then
      return "reopen", i
    end
    if S:find(" to done $") or S:find(" as done $") or S:find(" to complete $") or S:find(" to completed $") then
      return "complete", i
    end
  end
  if intent then return intent, i end
  -- statements without a leading verb: "groceries are done", "the report is finished"
  if S:find(" is not done ", 1, true) or S:find(" isnt done ", 1, true) then return "reopen", 0 end
  if S:find(" is done ", 1, true) or S:find(" are done ", 1, true) or S:find(" is finished ", 1, true)
    or S:find(" is complete ", 1, true) or S:find(" is completed ", 1, true) or S:find(" done $")
    or S:find(" are finished ", 1, true) then
    return "complete", 0
  end
  if S:find(" is not done ", 1, true) or S:find(" isnt done ", 1, true) then return "reopen", 0 end
  if S:find(" is urgent ", 1, true) or S:find(" is important ", 1, true) then return "update", 0 end
  if S:find(" tasks ", 1, true) or S:find(" todo list ", 1, true) or S:find(" overdue ", 1, true)
    or S:find(" pending ", 1, true) then
    for _, t in ipairs(toks) do
      local kind = VERB[t.w]
      if kind and kind ~= "list" then return "unknown" end
    end
    return "list", 0
  end
  return "unknown"
end

-- Mark the leading fillers and the verb as read.
local function take_verb(env, vi)
  if vi and vi > 0 then mark(env, 1, vi) end
end

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

-- List ---------------------------------------------------------------------------------

local SORTS = { priority = "priority", importance = "priority", due = "due", deadline = "due",
  date = "due", title = "title", name = "title", alphabetically = "title", newest = "created",
  created = "created", updated = "updated" }

-- Filters of a list request (also the group filters of "delete all completed tasks").
local function list_filters(env)
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

local function handle_list(env, vi)
  take_verb(env, vi)
  local toks = env.toks
  local f = list_filters(env)
  local args = {}
  local s = when.scan(toks, env.used, env.clock)
  if s and (s.dn or s.abs) then
    local c = env.clock
    local first = s.dn or c.today
    args.due_after = when.format(c, when.instant(c, first, 0, 0))
    args.due_before = when.format(c, when.instant(c, first + (s.span or 1), 0, 0))
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

-- Complete, reopen, delete ------------------------------------------------------------

local STATE_WORDS = { as = true, done = true, complete = true, completed = true, finished = true,
  off = true, again = true, ["not"] = true, incomplete = true, undone = true, pending = true,
  unfinished = true, open = true, uncompleted = true, is = true, are = true, with = true,
  ["from"] = true, list = true, my = true, todo = true, ["for"] = true, good = true, now = true,
  please = true, yet = true, isnt = true }

-- "all", "everything", "every task": a group chosen by filters.
local function group_of(env, intent)
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
  local f = list_filters(env)
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
      local due = type(task.due_at) == "string" and require("tz").parse_rfc3339(task.due_at)
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

local NAMES = { complete = "complete_task", reopen = "reopen_task", delete = "delete_task" }

local function not_found(text)
  return reply("not_found", "I couldn't find a task matching \"" .. text .. "\". Say \"show my tasks\" to see them.")
end

local function handle_state(env, vi, intent)
  take_verb(env, vi)
  local name = NAMES[intent]
  local ids = group_of(env, intent)
  if ids then
    if #ids == 0 then
      return reply("not_found", "There are no tasks like that.")
    end
  else
    -- "check off", "get rid of", "cross off", "forget about"
    for i = 1, #env.toks do
      local x = w(env, i)
      if x and STATE_WORDS[x] and not env.toks[i].quoted then mark(env, i) end
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

-- Update -------------------------------------------------------------------------------

local FIELD_WORDS = { title = "title", name = "title", priority = "priority", prio = "priority",
  due = "due_at", deadline = "due_at", date = "due_at", time = "due_at", description = "description",
  notes = "description", details = "description", note = "description", tags = "tags", tag = "tags",
  recurrence = "recurrence", ["repeat"] = "recurrence", schedule = "recurrence", reminder = "reminders",
  reminders = "reminders" }

-- Resolve the reference in the unused tokens; returns ids or a finished result.
local function target(env, the_call, prefer)
  local r = refs.resolve({ toks = env.toks, used = env.used, tasks = env.tasks, ctx = env.ctx, prefer = prefer },
    1, #env.toks)
  if r.none then
    local last = env.ctx.last_ids
    if last and #last == 1 then return { last[1] } end
    return nil, reply("need_ref", "Which task do you mean? Give its number or a word of its title.")
  end
  if r.not_found then return nil, not_found(r.not_found) end
  if r.ambiguous then return nil, choose(env, the_call, r.ambiguous) end
  return r.ids
end

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

local function handle_update(env, vi)
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
  local f = plural and list_filters(env) or {}
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
    if x == "reminder" or x == "reminders" or x == "alarm" or x == "notification" or x == "until" or x == "for" then
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
  add = handle_add, list = handle_list, update = handle_update, reschedule = handle_reschedule,
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
  local intent, vi = detect(env)
  return HANDLERS[intent](env, vi)
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

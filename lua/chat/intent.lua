--- Which request a message makes: add, list, complete, reopen, delete, update,
-- reschedule, snooze, plan, or a greeting, thanks, help, nothing understood. Mostly the
-- first word that is not a filler ("please", "can you"), with the phrases that say
-- otherwise ("mark it as urgent" is a change, "what should I do" a plan). Pure Lua.
-- @module chat.intent

local words = require "chat.words"
local when = require "chat.when"
local common = require "chat.common"

local has, known_tags = common.has, common.known_tags

local M = {}

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
function M.detect(env)
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
  -- "remind me again in an hour (about task 3)", "remind me about the report again at 6":
  -- a reminder that fired, again later; "remind me to ... again" stays a new task
  if S:find(" remind me again ", 1, true) or ((S:find(" remind me about ", 1, true)
    or S:find(" remind me of ", 1, true)) and S:find(" again ", 1, true) and not S:find(" to ", 1, true)) then
    return "snooze", has(env, "me")
  end
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

M.FILLER = FILLER
M.VERB = VERB

return M

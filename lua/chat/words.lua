--- Words of a chat message: tokens that keep the user's own text (`raw`, for titles)
-- beside a normalized form (`w`: lower case, apostrophes dropped, typos of the
-- assistant's keywords corrected), and the edit distance behind the corrections.
-- Pure Lua, no I/O.
-- @module chat.words

local M = {}

-- The words the assistant acts on. A token that is not one of these, is at least 4
-- letters long and is one (two, from 7 letters) edit away from exactly one of them is
-- read as that word: "tomorow" is tomorrow, "delte" is delete. Title words are kept as
-- typed in `raw`, so a correction never changes what a task is called.
local VOCAB_LIST = {
  -- verbs and intents
  "add", "create", "new", "make", "remind", "remember", "need", "note", "schedule",
  "delete", "remove", "erase", "drop", "trash", "cancel", "forget",
  "complete", "completed", "finish", "finished", "done", "mark", "check", "tick",
  "reopen", "uncomplete", "undo", "incomplete", "unfinished",
  "show", "list", "display", "view", "what", "whats", "which", "pending", "open",
  "remaining", "outstanding", "overdue", "search", "find", "look", "mentioning",
  "change", "update", "edit", "rename", "modify", "set", "call", "retitle",
  "reschedule", "move", "postpone", "push", "delay", "shift",
  "snooze", "reminder", "reminders", "plan", "agenda", "today", "tonight", "tomorrow",
  "yesterday", "week", "weekend", "month", "year", "morning", "afternoon", "evening",
  "night", "noon", "midnight", "next", "this", "coming", "every", "each",
  "priority", "urgent", "important", "critical", "high", "medium", "normal", "low",
  "task", "tasks", "todo", "todos", "items", "everything", "please", "thanks",
  "thank", "hello", "help", "minutes", "hours", "days", "weeks", "months",
  "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
  "january", "february", "march", "april", "june", "july", "august", "september",
  "october", "november", "december", "description", "title", "tagged", "label",
  "recurring", "repeat", "repeating", "tomorrows",
}
local VOCAB = {}
for _, w in ipairs(VOCAB_LIST) do VOCAB[w] = true end
M.VOCAB = VOCAB

-- Words that are never corrected (common words one edit from a keyword).
local KEEP = {
  mom = true, tag = true, tags = true, that = true, them = true, ["then"] = true, when = true,
  want = true, went = true, wash = true, walk = true, work = true, home = true, milk = true,
  mail = true, make = true, cake = true, bake = true, take = true, rest = true, test = true,
  last = true, list = true, lost = true, most = true, mark = true, park = true, dark = true,
  done = true, gone = true, none = true, some = true, have = true, here = true, there = true,
  were = true, more = true, pick = true, kick = true, sick = true, book = true, look = true,
  cook = true, hook = true, notes = true, meet = true, week = true, seek = true, plant = true,
  plans = true, plane = true, lists = true, drops = true, shows = true, moves = true,
  dates = true, data = true, daily = true, weekly = true, monthly = true, yearly = true,
  hourly = true, also = true, sets = true, call = true, cell = true, tall = true, fall = true,
  hall = true, ball = true, mall = true, wall = true, bill = true, bills = true, pill = true,
  fill = true, kill = true, will = true, file = true, five = true, nine = true, line = true,
  what = true, whom = true, than = true, edits = true, nights = true,
  mondays = true, fridays = true, sundays = true, hour = true, days = true, dogs = true,
  car = true, cat = true, dad = true, rent = true, sent = true, send = true, read = true,
  ready = true, mate = true, late = true, later = true, latest = true, hotel = true,
  motel = true, movie = true, mover = true, clean = true, plan = true, planned = true,
  early = true, yearn = true, morning = true, mourning = true, lunch = true, bunch = true,
  task = true, mask = true, flask = true, ask = true, asks = true, codes = true, dont = true,
  feed = true, date = true, plate = true, seed = true, need = true, mind = true, love = true,
  live = true, give = true, nice = true, fine = true, sure = true, post = true, host = true,
}

--- Optimal-string-alignment edit distance (insert, delete, substitute, swap two
-- neighbours), stopping early once it exceeds `max`.
-- @tparam string a
-- @tparam string b
-- @tparam integer max
-- @treturn integer the distance, or max + 1 when it is larger than max
function M.distance(a, b, max)
  local la, lb = #a, #b
  if math.abs(la - lb) > max then return max + 1 end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local best = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        v = math.min(v, prev2[j - 2] + 1)
      end
      cur[j] = v
      if v < best then best = v end
    end
    if best > max then return max + 1 end
    prev2, prev, cur = prev, cur, prev2
  end
  return prev[lb]
end

local cache = {}
local cache_n = 0

local function sorted_letters(w)
  local t = {}
  for i = 1, #w do t[i] = w:sub(i, i) end
  table.sort(t)
  return table.concat(t)
end

-- The word with its first doubled letter written once ("addd" -> "add").
local function undoubled(w)
  for i = 2, #w do
    if w:sub(i, i) == w:sub(i - 1, i - 1) then return w:sub(1, i - 1) .. w:sub(i + 1) end
  end
  return w
end

--- The keyword a word stands for: itself when known, else the unique keyword within
-- the allowed edit distance, else the word unchanged.
-- @tparam string w a lower-case word
-- @treturn string
function M.correct(w)
  if VOCAB[w] or KEEP[w] or #w < 4 or not w:match("^%a+$") then return w end
  local hit = cache[w]
  if hit then return hit end
  local max = #w >= 7 and 2 or 1
  local best, best_d, ties = nil, max + 1, 0
  -- a four-letter word is only read as a keyword with two letters swapped ("lsit"):
  -- other one-letter changes turn too many ordinary words into keywords ("love", "mind")
  local swap_only = #w == 4
  for _, v in ipairs(VOCAB_LIST) do
    local d = M.distance(w, v, max)
    if swap_only and d <= max and not (#v == 4 and sorted_letters(v) == sorted_letters(w))
      and not (#v == 3 and undoubled(w) == v) then
      d = max + 1
    end
    if d < best_d then
      best, best_d, ties = v, d, 1
    elseif d == best_d then
      ties = ties + 1
    end
  end
  local out = (best and ties == 1) and best or w
  if cache_n < 10000 then
    cache[w] = out
    cache_n = cache_n + 1
  end
  return out
end

-- Spellings that are not typos but stand for a keyword.
local ALIASES = {
  tmrw = "tomorrow", tmr = "tomorrow", tmw = "tomorrow", tmrow = "tomorrow",
  ["2morrow"] = "tomorrow", ["2day"] = "today", ["2nite"] = "tonight", tonite = "tonight",
  plz = "please", pls = "please", thx = "thanks", ty = "thanks", todos = "tasks",
  ["to-do"] = "todo", ["to-dos"] = "tasks", ["p.m"] = "pm", ["a.m"] = "am", ["p.m."] = "pm",
  ["a.m."] = "am", hrs = "hours", hr = "hour", mins = "minutes", min = "minute",
  wk = "week", wks = "weeks", asap = "urgent", ["w/"] = "with", ["&"] = "and", ["#"] = "number",
  ok = "ok", okay = "ok", yep = "yes", yeah = "yes", ya = "yes", yup = "yes", y = "yes",
  nope = "no", nah = "no", n = "no",
}
M.ALIASES = ALIASES

-- One token from a piece of text between spaces (punctuation trimmed).
local function push_word(out, s, piece)
  local lead = piece:match("^[%(%[%{\"'“”‘’,;!%?%.]*")
  local body = piece:sub(#lead + 1)
  local trail = body:match("[%)%]%}\"'“”‘’,;:!%?%.]*$")
  if trail == #body then trail = "" end
  body = body:sub(1, #body - #trail)
  -- "p.m." and "a.m." keep their dots
  if (body == "p.m" or body == "a.m") and trail:sub(1, 1) == "." then body = body .. "." end
  if body == "" then return end
  local start = s + #lead
  local lower = body:lower()
  local w = lower:gsub("[’‘']", "")
  w = ALIASES[w] or w
  -- words with an apostrophe ("don't", "i've") are never typos of a keyword
  if not w:find("[^%a]") and #w == #lower then w = M.correct(w) end
  out[#out + 1] = { raw = body, w = w, s = start, e = start + #body - 1, fixed = w ~= lower or nil,
    stop = trail:find("[%.!%?;]") ~= nil, colon = trail:find(":", 1, true) ~= nil }
end

--- Split a message into tokens. A quoted part ('...', "...", “...”) is one token with
-- `quoted = true` and its text unchanged.
-- @tparam string text
-- @treturn {table,...} tokens `{raw, w, s, e, quoted?, stop?}` (`s`, `e`: byte positions)
function M.tokens(text)
  local out = {}
  local i, n = 1, #text
  while i <= n do
    local ws, we = text:find("^%s+", i)
    if ws then i = we + 1 end
    if i > n then break end
    local c = text:sub(i, i)
    local q_end, body
    local prev = i == 1 and " " or text:sub(i - 1, i - 1)
    if c == '"' then
      q_end = text:find('"', i + 1, true)
    elseif c == "'" and prev:match("%s") then
      local j = i + 1
      while true do
        local k = text:find("'", j, true)
        if not k then break end
        local after = text:sub(k + 1, k + 1)
        if after == "" or after:match("[%s%p]") then q_end = k break end
        j = k + 1
      end
    elseif text:sub(i, i + 2) == "“" then
      local k = text:find("”", i + 3, true)
      if k then q_end = k + 2 end
    end
    if q_end then
      local open = (c == "'" or c == '"') and 1 or 3
      local close = (c == "'" or c == '"') and 1 or 3
      body = text:sub(i + open, q_end - close)
      if body:match("%S") then
        out[#out + 1] = { raw = body, w = body:lower(), s = i + open, e = q_end - close, quoted = true }
      end
      i = q_end + 1
    else
      local _, e = text:find("^%S+", i)
      push_word(out, i, text:sub(i, e))
      i = e + 1
    end
  end
  return out
end

--- The normalized words of tokens i..j joined by single spaces (a quoted part reads
-- as `"_"`, so that words inside quotes never trigger anything).
function M.join(toks, i, j)
  local parts = {}
  for k = i or 1, j or #toks do parts[#parts + 1] = toks[k].quoted and '"_"' or toks[k].w end
  return table.concat(parts, " ")
end

return M

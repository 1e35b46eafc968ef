--- Task fields inside a message: priority ("urgent", "high priority", "p1"), tags
-- ("#work", "tag it home", "tagged work"), recurrence (through the recurrence
-- library's `parse_phrase`), reminders ("remind me 30 minutes before") and the title
-- left over. Each reader marks the tokens it read in `used`, so that what remains is the
-- title or the task reference. Pure Lua.
-- @module chat.slots

local recurrence = require "recurrence"
local words = require "chat.words"
local when = require "chat.when"

local M = {}

local PRIORITY_WORDS = {
  urgent = "high", important = "high", critical = "high", asap = "high",
  p1 = "high", p2 = "medium", p3 = "low", p4 = "none",
}
local LEVELS = { high = "high", top = "high", highest = "high", medium = "medium", normal = "medium",
  mid = "medium", moderate = "medium", low = "low", lowest = "low", no = "none", none = "none",
  zero = "none" }

local function w(toks, used, i)
  local t = toks[i]
  return t and not used[t] and t.w or nil
end

local function mark(toks, used, i, j)
  for k = i, j do used[toks[k]] = true end
end

--- The priority named in the message.
-- @treturn string|nil none, low, medium or high
function M.priority(toks, used)
  for i = 1, #toks do
    local x = w(toks, used, i)
    if x then
      local nxt = w(toks, used, i + 1)
      if LEVELS[x] and (nxt == "priority" or nxt == "prio" or nxt == "pri") then
        mark(toks, used, i, i + 1)
        if w(toks, used, i - 1) == "a" or w(toks, used, i - 1) == "with" then mark(toks, used, i - 1, i - 1) end
        if w(toks, used, i - 1) == "as" then mark(toks, used, i - 1, i - 1) end
        return LEVELS[x]
      end
      if (x == "priority" or x == "prio") then
        local k = i + 1
        if nxt == "to" or nxt == "is" or nxt == "of" or nxt == "as" then k = i + 2 end
        local lv = w(toks, used, k)
        if lv and LEVELS[lv] then
          mark(toks, used, i, k)
          return LEVELS[lv]
        end
        local p = lv and lv:match("^p([1-4])$")
        if p then
          mark(toks, used, i, k)
          return PRIORITY_WORDS[lv]
        end
      end
      if PRIORITY_WORDS[x] and not toks[i].quoted then
        mark(toks, used, i, i)
        if nxt == "priority" then mark(toks, used, i + 1, i + 1) end
        local prev = w(toks, used, i - 1)
        if prev == "as" or prev == "it" and w(toks, used, i - 2) == "make" then mark(toks, used, i - 1, i - 1) end
        -- "..., it's important", "this is urgent"
        if prev == "its" or prev == "is" then
          mark(toks, used, i - 1, i - 1)
          local p2 = w(toks, used, i - 2)
          if prev == "is" and (p2 == "it" or p2 == "this" or p2 == "that") then mark(toks, used, i - 2, i - 2) end
        end
        return PRIORITY_WORDS[x]
      end
      if x:match("^!+$") and #x >= 2 then
        mark(toks, used, i, i)
        return #x >= 3 and "high" or "medium"
      end
    end
  end
  return nil
end

local TAG_VERBS = { tag = true, tagged = true, label = true, labeled = true, labelled = true }
local function clean_tag(raw)
  local t = raw:gsub("^#", ""):gsub("[%.,;:!%?]+$", "")
  if t == "" then return nil end
  return t:lower()
end

--- Tags named in the message: "#work", "tag it home", "tagged work and urgent".
-- @treturn {string,...}|nil lower-case tags in order, without duplicates
function M.tags(toks, used)
  local out, seen = {}, {}
  local function add(raw)
    local t = clean_tag(raw)
    if t and not seen[t] then
      seen[t] = true
      out[#out + 1] = t
    end
  end
  for i = 1, #toks do
    local x = w(toks, used, i)
    if x and toks[i].raw:match("^#[%w_%-]+") and not toks[i].raw:match("^#%d+$") then
      add(toks[i].raw)
      mark(toks, used, i, i)
      if w(toks, used, i - 1) == "with" or w(toks, used, i - 1) == "in" then mark(toks, used, i - 1, i - 1) end
    elseif x and TAG_VERBS[x] then
      local k = i + 1
      local nxt = w(toks, used, k)
      if nxt == "it" or nxt == "as" or nxt == "with" or nxt == "this" or nxt == "that" then k = k + 1 end
      if w(toks, used, k) == "as" or w(toks, used, k) == "with" then k = k + 1 end
      local first = k
      local STOPS = { priority = true, every = true, due = true, at = true, on = true, by = true,
        ["and"] = true, to = true, ["for"] = true, tomorrow = true, today = true, tonight = true }
      while w(toks, used, k) and not STOPS[w(toks, used, k)] and not when.WEEKDAYS[w(toks, used, k)] do
        add(toks[k].raw)
        k = k + 1
        local sep = toks[k - 1].raw:sub(-1) == ","
        if w(toks, used, k) == "and" and w(toks, used, k + 1) and not STOPS[w(toks, used, k + 1)] then
          k, sep = k + 1, true
        end
        if toks[k - 1].stop or not sep then break end
      end
      if k > first then
        mark(toks, used, i, k - 1)
        if w(toks, used, i - 1) == "and" then mark(toks, used, i - 1, i - 1) end
      end
    end
  end
  return #out > 0 and out or nil
end

-- Phrases parse_phrase does not know, said another way.
local function normalize_phrase(s)
  s = s:gsub("^every morning", "every day at 9am"):gsub("^every evening", "every day at 7pm")
    :gsub("^every night", "every day at 8pm"):gsub("^each ", "every ")
    :gsub("^every (%d%d?[snrt][tdh])$", "every month on the %1")
    :gsub("^every (%d%d?[snrt][tdh]) ", "every month on the %1 ")
    :gsub("^every (%a+)s ", "every %1 "):gsub("^every (%a+)s$", "every %1")
  return s
end

local STARTS = { every = true, each = true, daily = true, weekly = true, monthly = true,
  yearly = true, annually = true, hourly = true }

--- A recurrence phrase ("every monday at 9am", "daily", "every 1st"): the longest span
-- from a starting word that the recurrence library accepts.
-- @treturn string|nil the canonical RRULE
function M.recurrence(toks, used)
  for i = 1, #toks do
    local x = w(toks, used, i)
    if x and STARTS[x] then
      for j = math.min(#toks, i + 12), i, -1 do
        local ok = true
        for k = i, j do if used[toks[k]] or toks[k].quoted then ok = false end end
        if ok then
          local rule = recurrence.parse_phrase(normalize_phrase(words.join(toks, i, j)))
          if rule then
            mark(toks, used, i, j)
            local prev = w(toks, used, i - 1)
            if prev == "repeat" or prev == "repeats" or prev == "repeating" or prev == "recurring"
              or prev == "recur" or prev == "recurs" or prev == "and" then
              mark(toks, used, i - 1, i - 1)
            end
            return rule
          end
        end
      end
    end
  end
  return nil
end

local DURATION_UNITS = { minute = "M", minutes = "M", min = "M", mins = "M", hour = "H",
  hours = "H", day = "D", days = "D", week = "W", weeks = "W" }

--- "30 minutes before", "an hour before", "a day before": an ISO 8601 duration.
-- @treturn string|nil e.g. PT30M, PT1H, P1D
function M.before(toks, used)
  for i = 1, #toks do
    if w(toks, used, i) == "before" then
      local unit = DURATION_UNITS[w(toks, used, i - 1) or ""]
      local nword = w(toks, used, i - 2)
      local n = nword and (tonumber(nword) or when.NUMBERS[nword])
      if unit and n and n == math.floor(n) and n > 0 and n <= 10000 then
        mark(toks, used, i - 2, i)
        n = math.tointeger(n)
        if unit == "D" then return "P" .. n .. "D" end
        if unit == "W" then return "P" .. n .. "W" end
        return "PT" .. n .. unit
      end
    end
  end
  return nil
end

--- "for 10 minutes", "for an hour": an ISO 8601 duration (snoozing).
function M.duration(toks, used)
  for i = 1, #toks do
    if w(toks, used, i) == "half" and (w(toks, used, i + 1) == "an" or w(toks, used, i + 1) == "a")
      and w(toks, used, i + 2) == "hour" then
      mark(toks, used, (w(toks, used, i - 1) == "for" or w(toks, used, i - 1) == "by") and i - 1 or i, i + 2)
      return "PT30M"
    end
  end
  for i = 1, #toks do
    local unit = DURATION_UNITS[w(toks, used, i) or ""]
    local nword = w(toks, used, i - 1)
    local n = nword and (tonumber(nword) or when.NUMBERS[nword])
    if unit and n and n == math.floor(n) and n > 0 and n <= 10000 then
      local first = i - 1
      if w(toks, used, i - 2) == "for" or w(toks, used, i - 2) == "by" then first = i - 2 end
      mark(toks, used, first, i)
      n = math.tointeger(n)
      if unit == "D" then return "P" .. n .. "D" end
      if unit == "W" then return "P" .. n .. "W" end
      return "PT" .. n .. unit
    end
  end
  return nil
end

local EDGE = { the = true, a = true, an = true, to = true, ["and"] = true, ["for"] = true, on = true,
  at = true, by = true, with = true, ["in"] = true, of = true, called = true, named = true,
  titled = true, task = true, ["that"] = true, ["is"] = true, due = true, please = true, ["-"] = true,
  [":"] = true, it = true, my = true, new = true }

--- The text of the unused tokens i..j, as the user typed it, without connecting words
-- at either end ("to", "the", "on" ...); the first letter made upper case.
-- @treturn string|nil
function M.text(toks, used, i, j)
  local parts = {}
  local first, last
  for k = i, j do
    if not used[toks[k]] then
      first = first or k
      last = k
    end
  end
  if not first then return nil end
  while first <= last and (used[toks[first]] or (EDGE[toks[first].w] and not toks[first].quoted)) do
    first = first + 1
  end
  while last >= first and (used[toks[last]] or (EDGE[toks[last].w] and not toks[last].quoted)) do
    last = last - 1
  end
  for k = first, last do
    if not used[toks[k]] then parts[#parts + 1] = toks[k].raw end
  end
  if #parts == 0 then return nil end
  local s = table.concat(parts, " ")
  s = s:gsub("^%l", string.upper)
  return s
end

return M

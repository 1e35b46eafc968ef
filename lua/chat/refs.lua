--- Which tasks a message means: by id ("task 3" is the third of the list last shown,
-- a UUID or the first 8 characters of one), by position ("the second one", "the last
-- one"), by pronoun ("it", "them"), by group ("all completed tasks", "everything tagged
-- work") or by words of the title ("the meeting task", typos allowed). Pure Lua.
-- @module chat.refs

local words = require "chat.words"

local M = {}

local ORDINALS = { first = 1, ["1st"] = 1, second = 2, ["2nd"] = 2, third = 3, ["3rd"] = 3,
  fourth = 4, ["4th"] = 4, fifth = 5, ["5th"] = 5, sixth = 6, ["6th"] = 6, seventh = 7,
  ["7th"] = 7, eighth = 8, ["8th"] = 8, ninth = 9, ["9th"] = 9, tenth = 10, ["10th"] = 10,
  last = -1, top = 1 }
local NUMBER_WORDS = { one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7,
  eight = 8, nine = 9, ten = 10 }
local STOP = {}
for w in ([[the a an my our task tasks todo todos item items one ones called named titled about for
  to of on with that this is it please thing entry as done complete completed finished again from
  list in and me i your which was those these them all every everything thats its mine yes
  due priority tag tagged status mark marked delete remove new title name ok just also
  something stuff number no]]):gmatch("%S+") do
  STOP[w] = true
end
M.STOP = STOP

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- Lower-case words of a title (cached on the task table).
local function title_words(task)
  if not task._words then
    local t = {}
    for word in (task.title or ""):lower():gsub("[’']", ""):gmatch("[%w]+") do t[#t + 1] = word end
    task._words = t
  end
  return task._words
end

local function word_matches(k, t)
  if k == t or k .. "s" == t or t .. "s" == k or k .. "es" == t or t .. "es" == k then return true end
  if #k >= 4 and #t >= 4 and (t:sub(1, #k) == k or k:sub(1, #t) == t) then return true end
  if #k >= 4 then
    local max = #k >= 7 and 2 or 1
    return words.distance(k, t, max) <= max
  end
  return false
end

local function matches(task, keys)
  local tw = title_words(task)
  local n = 0
  for _, k in ipairs(keys) do
    for _, t in ipairs(tw) do
      if word_matches(k, t) then n = n + 1 break end
    end
  end
  return n
end

--- The tasks whose titles contain the given words (all of them, else the best share
-- of at least half, when that picks fewer tasks).
-- @tparam {string,...} keys lower-case words
-- @tparam {table,...} tasks candidates
-- @treturn {table,...} matching tasks
function M.by_words(keys, tasks)
  if #keys == 0 then return {} end
  local full, best, best_n = {}, {}, 0
  local phrase = table.concat(keys, " ")
  for _, task in ipairs(tasks) do
    local n = matches(task, keys)
    if n == #keys then full[#full + 1] = task end
    if n > best_n then best, best_n = { task }, n elseif n == best_n and n > 0 then best[#best + 1] = task end
  end
  local out = #full > 0 and full or (best_n * 2 >= #keys and #keys >= 2 and best or {})
  if #out > 1 then
    for _, task in ipairs(out) do
      if table.concat(title_words(task), " ") == phrase then return { task } end
    end
  end
  return out
end

local function ids_of(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.id end
  return out
end

--- Resolve the reference made by the unused tokens i..j.
-- @tparam table env `{toks, used, tasks, by_id, ctx, prefer = "pending"|"completed"|nil}`
-- @treturn table one of `{ids = {...}}`, `{ambiguous = {...}}`, `{not_found = text}`,
--   `{none = true}` (no reference in those words)
function M.resolve(env, i, j)
  local toks, used, ctx = env.toks, env.used, env.ctx or {}
  local list = ctx.last_list
  if not list or #list == 0 then list = ids_of(env.tasks) end
  local R = {}
  for k = i, j do
    if toks[k] and not used[toks[k]] then R[#R + 1] = toks[k] end
  end
  if #R == 0 then return { none = true } end

  -- ids
  local ids = {}
  for _, t in ipairs(R) do
    if t.raw:match(UUID) then ids[#ids + 1] = t.raw:lower() end
  end
  if #ids > 0 then return { ids = ids } end
  for _, t in ipairs(R) do
    local p = t.w:match("^%x%x%x%x%x%x%x%x$")
    if p and p:match("%d") and p:match("%a") then
      for _, task in ipairs(env.tasks) do
        if task.id:sub(1, 8) == p then ids[#ids + 1] = task.id end
      end
      if #ids == 0 then return { not_found = t.raw } end
    end
  end
  if #ids > 0 then return { ids = ids } end

  -- numbers: "task 3", "#3", "tasks 1 and 2", "number 4", "3"
  local positions = {}
  local other = 0
  for k, t in ipairs(R) do
    local n = t.raw:match("^#(%d+)$") or t.w:match("^(%d+)$")
    local prev = R[k - 1] and R[k - 1].w
    local nxt = R[k + 1] and R[k + 1].w
    if n and (t.raw:sub(1, 1) == "#" or nxt == "and" or nxt == "or" or (nxt and nxt:match("^%d+$"))
      or prev == "task" or prev == "tasks" or prev == "number"
      or prev == "no" or prev == "item" or prev == "and" or prev == "or" or prev == "#"
      or (prev and prev:match("^%d+$")) or #R == 1) then
      positions[#positions + 1] = tonumber(n)
    elseif NUMBER_WORDS[t.w] and (prev == "task" or prev == "number" or prev == "item") then
      positions[#positions + 1] = NUMBER_WORDS[t.w]
    elseif not STOP[t.w] then
      other = other + 1
    end
  end
  -- ordinals: "the second one", "the last task"
  if #positions == 0 then
    for k, t in ipairs(R) do
      local o = ORDINALS[t.w]
      local nxt = R[k + 1] and R[k + 1].w
      if o and (nxt == nil or nxt == "one" or nxt == "task" or nxt == "item" or nxt == "and"
        or nxt == "on" or nxt == "in" or ORDINALS[nxt]) then
        positions[#positions + 1] = o
        other = 0
      end
    end
  end
  if #positions > 0 and other == 0 then
    for _, p in ipairs(positions) do
      local id = p == -1 and list[#list] or list[p]
      if not id then return { not_found = "number " .. p, position = p } end
      ids[#ids + 1] = id
    end
    return { ids = ids, positional = true }
  end

  -- pronouns
  local plain = {}
  for _, t in ipairs(R) do
    if t.w ~= "the" and t.w ~= "one" and t.w ~= "task" and t.w ~= "please" and t.w ~= "as" then
      plain[#plain + 1] = t.w
    end
  end
  local p = table.concat(plain, " ")
  if p == "it" or p == "that" or p == "this" then
    local last = ctx.last_ids
    if last and #last == 1 then return { ids = { last[1] } } end
    if last and #last > 1 then return { ambiguous = last } end
    return { not_found = "it" }
  end
  if p == "them" or p == "those" or p == "these" or p == "all of them" or p == "them all" then
    local last = ctx.last_list or ctx.last_ids
    if last and #last > 0 then return { ids = last, group = true } end
    return { not_found = p }
  end

  -- title words
  local keys = {}
  for _, t in ipairs(R) do
    if not STOP[t.w] and not t.w:match("^%p+$") then
      for part in t.raw:lower():gsub("[’']", ""):gmatch("[%w]+") do keys[#keys + 1] = part end
    end
  end
  if #keys == 0 then return { none = true } end
  local found = M.by_words(keys, env.tasks)
  -- "groceries and bills": several titles, each naming one task
  if #found ~= 1 then
    local parts, cur = {}, {}
    for _, t in ipairs(R) do
      if t.w == "and" or t.raw:sub(-1) == "," then
        if t.w ~= "and" and not STOP[t.w] then cur[#cur + 1] = t.w end
        if #cur > 0 then parts[#parts + 1] = cur end
        cur = {}
      elseif not STOP[t.w] then
        cur[#cur + 1] = t.w
      end
    end
    if #cur > 0 then parts[#parts + 1] = cur end
    if #parts > 1 then
      local many = {}
      for _, part in ipairs(parts) do
        local one = M.by_words(part, env.tasks)
        if #one ~= 1 then many = nil break end
        many[#many + 1] = one[1].id
      end
      if many then return { ids = many } end
    end
  end
  if #found > 1 and env.prefer then
    local pref = {}
    for _, task in ipairs(found) do
      if (env.prefer == "completed") == (task.completed == true) then pref[#pref + 1] = task end
    end
    if #pref >= 1 then found = pref end
  end
  if #found == 0 then
    local shown = {}
    for _, t in ipairs(R) do if not STOP[t.w] then shown[#shown + 1] = t.raw end end
    return { not_found = table.concat(shown, " ") }
  end
  if #found == 1 then return { ids = { found[1].id } } end
  return { ambiguous = ids_of(found) }
end

M.ORDINALS = ORDINALS
M.NUMBER_WORDS = NUMBER_WORDS

return M

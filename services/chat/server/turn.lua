--- One chat turn: load the conversation (or start one), understand the message (the
-- offline parser, or the language model when one is configured, falling back to the
-- parser), run the tool calls through the task repository, answer, and store the turn.
-- Nothing survives in memory between turns.
-- @module chat.server.turn

local parse = require "chat.parse"
local context = require "chat.context"
local say = require "chat.say"
local exec = require "chat.server.exec"
local store = require "chat.server.store"
local llm = require "chat.server.llm"
local repo = require "tasks.repo"
local json = require "json"
local timer = require "timer"
local task = require "task"

local M = {}

--- Tasks the parser may refer to ("task 3", "the meeting task"): pending ones, then the
-- recently completed ones.
M.PENDING, M.COMPLETED = 200, 50

-- Run f in its own coroutine now; the returned function waits for its results. Two
-- reads that do not depend on each other then share one round trip's wait.
local function started(f)
  local ev, res = task.event(), nil
  task.spawn(function()
    res = table.pack(pcall(f))
    ev:set()
  end)
  return function()
    ev:wait()
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end
end

-- The user's tasks in the order "task N" counts them when no list was shown: pending
-- ones oldest first, then the most recently completed (two reads at once).
local function candidates(user)
  local done = started(function()
    return repo.list(user, { status = "completed", sort = "updated", order = "desc", limit = tostring(M.COMPLETED) })
  end)
  local page, msg, code = repo.list(user, { status = "pending", sort = "created", order = "asc",
    limit = tostring(M.PENDING) })
  local completed, cmsg, ccode = done()
  if not page then return nil, msg, code end
  if not completed then return nil, cmsg, ccode end
  local out = page.items
  for _, t in ipairs(completed.items) do out[#out + 1] = t end
  return out
end

-- Tasks a turn shows or touched, for the client to refresh.
local function touched(outcomes)
  local out, seen = {}, {}
  local function add(t)
    if type(t) == "table" and t.id and not seen[t.id] then
      seen[t.id] = true
      out[#out + 1] = t
    end
  end
  for _, o in ipairs(outcomes) do
    local r = o.result or {}
    add(r.task)
    for _, t in ipairs(r.items or {}) do add(t) end
    for _, t in ipairs(r.tasks or {}) do add(t) end
  end
  return json.array(out)
end

-- What a stored message keeps of a tool's result: ids and titles, not whole tasks (the
-- task API has the tasks; a conversation only needs to say what was done).
local function brief(result)
  local function t(x) return { id = x.id, title = x.title } end
  local function list(xs)
    local out = {}
    for i, x in ipairs(xs) do out[i] = t(x) end
    return json.array(out)
  end
  if type(result) ~= "table" then return {} end
  if result.error then return { error = result.error } end
  local out = {}
  if type(result.task) == "table" then out.task = t(result.task) end
  for _, k in ipairs { "items", "tasks", "overdue", "due", "next" } do
    if type(result[k]) == "table" then out[k] = list(result[k]) end
  end
  if result.date then out.date = result.date end
  return out
end

--- Run the calls of a parse result.
function M.run_calls(user, calls, env)
  local outcomes = {}
  for i, c in ipairs(calls) do
    outcomes[i] = { name = c.name, arguments = c.arguments, result = exec.call(user, c.name, c.arguments, env) }
  end
  return outcomes
end

--- Understand and carry out one message of a conversation.
-- @tparam string user
-- @tparam table input `{message, conversation_id?, tz?}` (already validated)
-- @return the response body, or nil, message, code
function M.chat(user, input)
  local tasks_of_user = started(function() return candidates(user) end)
  local conv, msg, code
  if input.conversation_id then
    conv, msg, code = store.get(user, input.conversation_id)
  else
    local zone = input.tz
    if not zone then
      zone, msg, code = store.last_tz(user)
      if msg then return nil, msg, code end
    end
    conv, msg, code = store.create(user, zone)
  end
  if not conv then return nil, msg, code end
  local zone = input.tz or conv.tz or "UTC"
  local now = timer.now and math.floor(timer.now()) or os.time()
  local tasks
  tasks, msg, code = tasks_of_user()
  if not tasks then return nil, msg, code end
  local env = { tz = zone, now = now }
  local result
  -- a question waiting for "yes" or "which one" is answered by the offline assistant,
  -- which keeps it in the conversation's context
  if llm.enabled() and not conv.context.pending then
    result = llm.turn(user, conv, input.message, env, tasks)
  end
  if not result then
    result = parse.parse(input.message, conv.context, now, zone, tasks)
  end
  local outcomes = result.outcomes
  if not outcomes then
    outcomes = result.kind == "calls" and M.run_calls(user, result.calls, env) or {}
  end
  local answer = result.answer or say.answer(result, outcomes, zone, now)
  local ctx = context.after(conv.context, result, outcomes)
  local calls, stored = {}, {}
  for i, o in ipairs(outcomes) do
    calls[i] = { name = o.name, arguments = o.arguments, result = o.result }
    stored[i] = { name = o.name, arguments = o.arguments, result = brief(o.result) }
  end
  calls = json.array(calls)
  local ok
  ok, msg, code = store.save_turn(user, conv.id, input.message, answer, json.array(stored), ctx, input.tz)
  if not ok then return nil, msg, code end
  return { conversation_id = conv.id, response = answer, tool_calls = calls, tasks = touched(outcomes) }
end

return M

--- The evaluation runner of the offline assistant: plays every case of
-- spec/chat/eval_cases.lua through chat.parse (threading the conversation context
-- through chat.context for multi-turn cases) and compares each turn exactly with what
-- was expected. Used by spec/chat/eval_spec.lua (the thresholds) and by
-- scripts/eval-chat (`make eval-chat`, the report).
--
-- Between turns, calls are "executed" against the case's fixture tasks by a small
-- stand-in (lists filter the fixture; other calls echo their task), only so that
-- "the second one" after a list has something to point at.

local parse = require "chat.parse"
local context = require "chat.context"
local tz = require "tz"
local json = require "json"

local M = {}

--- The id the stand-in gives a task created by add_task.
M.NEW_ID = "00000000-0000-4000-8000-0000000000aa"

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.deep_equal = deep_equal

local function set_equal(a, b)
  if #a ~= #b then return false end
  local seen = {}
  for _, x in ipairs(a) do seen[x] = true end
  for _, x in ipairs(b) do if not seen[x] then return false end end
  return true
end

-- The stand-in for executing a list on the fixture.
local function simulate_list(args, tasks, now)
  local items = {}
  for _, t in ipairs(tasks) do
    local ok = true
    if args.status == "pending" and t.completed then ok = false end
    if args.status == "completed" and not t.completed then ok = false end
    local due = type(t.due_at) == "string" and tz.parse_rfc3339(t.due_at)
    if args.overdue and (t.completed or not due or due >= now) then ok = false end
    if args.due_after and (not due or due < tz.parse_rfc3339(args.due_after)) then ok = false end
    if args.due_before and (not due or due >= tz.parse_rfc3339(args.due_before)) then ok = false end
    for _, tag in ipairs(args.tags or {}) do
      local has = false
      for _, x in ipairs(t.tags or {}) do if x == tag then has = true end end
      if not has then ok = false end
    end
    if args.priority then
      local has = false
      for _, p in ipairs(args.priority) do if (t.priority or "none") == p then has = true end end
      if not has then ok = false end
    end
    if args.q and not t.title:lower():find(args.q:lower(), 1, true) then ok = false end
    if ok then items[#items + 1] = t end
  end
  return { items = items }
end

local function execute(calls, tasks, now)
  local out = {}
  for i, c in ipairs(calls) do
    local result
    if c.name == "list_tasks" or c.name == "plan_day" then
      result = simulate_list(c.name == "list_tasks" and c.arguments or { status = "pending" }, tasks, now)
    elseif c.arguments.ids then
      result = { tasks = {} }
      for _, id in ipairs(c.arguments.ids) do result.tasks[#result.tasks + 1] = { id = id } end
    else
      result = { task = { id = c.arguments.id or M.NEW_ID } }
    end
    out[i] = { name = c.name, arguments = c.arguments, result = result }
  end
  return out
end

--- The label a turn's expectation is counted under.
function M.label(expect)
  if expect.kind == "calls" then return expect.calls[1] and expect.calls[1].name or "none" end
  if expect.kind == "reply" then return "reply:" .. expect.reply end
  return expect.kind
end

--- Compare a parse result with an expectation; returns true or false, why.
function M.compare(got, expect)
  if got.kind ~= expect.kind then return false, "kind " .. tostring(got.kind) end
  if expect.kind == "calls" or expect.kind == "confirm" then
    if not deep_equal(got.calls, expect.calls) then return false, "calls differ" end
    return true
  end
  if expect.kind == "choose" then
    if not set_equal(got.candidates, expect.candidates) then return false, "candidates differ" end
    if expect.call and got.pending.call.name ~= expect.call then return false, "pending call differs" end
    return true
  end
  if expect.kind == "reply" then
    if got.reply ~= expect.reply then return false, "reply " .. tostring(got.reply) end
    return true
  end
  return false, "bad expectation"
end

local function show(v)
  local ok, s = pcall(json.encode, v)
  return ok and s or tostring(v)
end

--- Run every case.
-- @tparam table set the evaluation set (spec/chat/eval_cases.lua)
-- @treturn table `{total, passed, by_label = {label = {total, passed}}, failures = {...},
--   origin_failures = {...}}`
function M.run(set)
  local report = { total = 0, passed = 0, by_label = {}, failures = {}, origin_total = 0, origin_failures = {} }
  for ci, case in ipairs(set.cases) do
    local tasks = set.fixtures[case.tasks or "default"]
    local zone = case.tz or set.tz
    local now = case.now or set.now
    local ctx = case.ctx or {}
    local turns = case.turns or { { case[1], case[2] } }
    for ti, turn in ipairs(turns) do
      local text, expect = turn[1], turn[2]
      local ok_run, got = pcall(parse.parse, text, ctx, now, zone, tasks)
      local ok, why
      if not ok_run then ok, why = false, "error: " .. tostring(got) else ok, why = M.compare(got, expect) end
      local label = M.label(expect)
      local l = report.by_label[label] or { total = 0, passed = 0 }
      report.by_label[label] = l
      l.total = l.total + 1
      report.total = report.total + 1
      if case.origin then report.origin_total = report.origin_total + 1 end
      if ok then
        l.passed = l.passed + 1
        report.passed = report.passed + 1
      else
        local f = { case = ci, turn = ti, text = text, why = why, expected = show(expect),
          got = ok_run and show(got.calls or got.candidates or got.reply) or why }
        report.failures[#report.failures + 1] = f
        if case.origin then report.origin_failures[#report.origin_failures + 1] = f end
      end
      if ok_run then
        local outcomes = got.kind == "calls" and execute(got.calls, tasks, now) or nil
        ctx = context.after(ctx, got, outcomes)
      end
    end
  end
  return report
end

--- The report as text: accuracy per label, then every failure.
function M.format(report)
  local lines = {}
  local labels = {}
  for k in pairs(report.by_label) do labels[#labels + 1] = k end
  table.sort(labels)
  lines[#lines + 1] = string.format("%-28s %6s %6s %8s", "intent", "turns", "right", "accuracy")
  for _, k in ipairs(labels) do
    local l = report.by_label[k]
    lines[#lines + 1] = string.format("%-28s %6d %6d %7.1f%%", k, l.total, l.passed, 100 * l.passed / l.total)
  end
  lines[#lines + 1] = string.format("%-28s %6d %6d %7.1f%%", "ALL", report.total, report.passed,
    100 * report.passed / math.max(1, report.total))
  lines[#lines + 1] = string.format("origin examples: %d of %d right", report.origin_total - #report.origin_failures,
    report.origin_total)
  if #report.failures > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "failures:"
    for _, f in ipairs(report.failures) do
      lines[#lines + 1] = string.format("  case %d turn %d: %q (%s)\n    expected %s\n    got      %s",
        f.case, f.turn, f.text, f.why, f.expected, f.got)
    end
  end
  return table.concat(lines, "\n")
end

return M

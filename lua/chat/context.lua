--- What a conversation remembers between turns, as a plain table stored with the
-- conversation: `last_list` (task ids in the order last shown, for "the second one" and
-- "task 3"), `last_ids` (the tasks last acted on, for "it") and `pending` (a question
-- waiting for its answer: which task, or "are you sure?"). Pure Lua.
-- @module chat.context

local M = {}

local LISTS = { list_tasks = true, plan_day = true }

--- The context after a turn.
-- @tparam[opt] table ctx the context before the turn
-- @tparam table result what chat.parse returned
-- @tparam[opt] {table,...} outcomes the executed calls `{name, arguments, result}` where a
--   list's result has `items` (tasks with ids) and a task's result has `task`
-- @treturn table the new context
function M.after(ctx, result, outcomes)
  ctx = ctx or {}
  local out = { last_list = ctx.last_list, last_ids = ctx.last_ids }
  if result.kind == "choose" or result.kind == "confirm" then
    out.pending = result.pending
    return out
  end
  local acted = {}
  for _, o in ipairs(outcomes or {}) do
    local r = o.result
    if type(r) == "table" and not r.error then
      if LISTS[o.name] and type(r.items) == "table" then
        local ids = {}
        for i, t in ipairs(r.items) do ids[i] = t.id end
        out.last_list = ids
        if #ids == 1 then acted[#acted + 1] = ids[1] end
      elseif type(r.task) == "table" and r.task.id then
        acted[#acted + 1] = r.task.id
      elseif type(r.tasks) == "table" then
        for _, t in ipairs(r.tasks) do acted[#acted + 1] = t.id end
      end
    end
  end
  if #acted > 0 then out.last_ids = acted end
  return out
end

return M

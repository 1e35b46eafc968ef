--- What the parts of the offline assistant share: the shapes of its results (calls, a
-- question, a reply), the reading state's token helpers, and resolving a task reference
-- into ids or a question. Pure Lua.
-- @module chat.common

local refs = require "chat.refs"

local M = {}

-- Results ------------------------------------------------------------------------------

function M.calls(list) return { kind = "calls", calls = list } end
function M.call(name, args) return M.calls { { name = name, arguments = args } } end

M.HELP = "I can add tasks (\"add buy milk tomorrow at 5pm #home\"), show them (\"what's pending?\", "
  .. "\"what's due today?\"), complete, reopen, delete or change them (\"mark task 3 as done\", "
  .. "\"rename the second one to 'Call mom'\"), reschedule (\"move my morning meetings to 2 PM\"), "
  .. "snooze a reminder and plan your day."

function M.reply(kind, text) return { kind = "reply", reply = kind, text = text } end

local function title_of(env, id)
  local t = env.by_id[id]
  return t and t.title or id
end

function M.choose(env, the_call, ids, field)
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

function M.confirm(env, list)
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

function M.w(env, i)
  local t = env.toks[i]
  return t and not env.used[t] and t.w or nil
end
function M.mark(env, i, j)
  for k = i, j or i do if env.toks[k] then env.used[env.toks[k]] = true end end
end
function M.has(env, word)
  for i, t in ipairs(env.toks) do if t.w == word and not env.used[t] then return i end end
  return nil
end

-- The user's tags, for "show my work tasks".
function M.known_tags(env)
  if not env.tags then
    local t = {}
    for _, task in ipairs(env.tasks) do
      for _, tag in ipairs(task.tags or {}) do t[tag] = true end
    end
    env.tags = t
  end
  return env.tags
end

-- Mark the leading fillers and the verb as read.
function M.take_verb(env, vi)
  if vi and vi > 0 then M.mark(env, 1, vi) end
end

function M.not_found(text)
  return M.reply("not_found", "I couldn't find a task matching \"" .. text .. "\". Say \"show my tasks\" to see them.")
end

-- Resolve the reference in the unused tokens; returns ids or a finished result.
function M.target(env, the_call, prefer)
  local r = refs.resolve({ toks = env.toks, used = env.used, tasks = env.tasks, ctx = env.ctx, prefer = prefer },
    1, #env.toks)
  if r.none then
    local last = env.ctx.last_ids
    if last and #last == 1 then return { last[1] } end
    return nil, M.reply("need_ref", "Which task do you mean? Give its number or a word of its title.")
  end
  if r.not_found then return nil, M.not_found(r.not_found) end
  if r.ambiguous then return nil, M.choose(env, the_call, r.ambiguous) end
  return r.ids
end


return M

-- Snoozing through chat and MCP (issues 15 and 16): the `snooze_reminder` tool is the
-- code of POST /api/tasks/:id/snooze (lua/reminders/snooze.lua), so a snooze from chat
-- writes the very schedule row REST writes and the reminder fires again; another user's
-- task is "not found"; a task whose reminder has not fired gets a helpful answer, not a
-- 500. Runs api + notification + chat on one database.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"

describe("snooze through chat and MCP", function()
  local host
  local user, other = "snz-owner", "snz-other"
  local tasks = {}

  setup(function()
    host = n.start({ bundles = { "services/api", "services/notification", "services/chat" } })
    local at = os.time() + 2
    for i, title in ipairs { "rest dentist", "chat dentist", "mcp dentist", "mcp bad" } do
      tasks[i] = n.task(host, user, { title = title, due_at = n.iso(at + 3600),
        reminders = { { at = n.iso(at) } } })
    end
    assert(h.eventually(function() return n.count(host) == #tasks end, 10), host:log())
  end)
  teardown(function() host:stop() end)

  local function chat(who, message)
    local s, body = host:request("POST", "/api/chat", { token = h.token(who),
      body = { message = message, tz = "UTC" } })
    assert.are.equal(200, s, json.encode(body))
    return body
  end
  local function mcp(who, name, args)
    local s, b = host:request("POST", "/mcp", { token = h.token(who),
      headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" },
      body = json.encode { jsonrpc = "2.0", id = 1, method = "tools/call",
        params = { name = name, arguments = args } } })
    assert.are.equal(200, s, json.encode(b))
    return b.result
  end
  -- The task's snooze row as text, without the ids that differ between tasks.
  local function snooze_row(id)
    return h.psql("SELECT user_id, rkey, remind_at, state, fired_at IS NULL FROM reminder_schedule"
      .. " WHERE task_id = '" .. id .. "' AND rkey = 'snooze'", host.database_url)
  end

  it("a chat snooze writes the same schedule row as the REST route", function()
    -- tomorrow 09:00 UTC, as the chat reads "tomorrow at 9am" in UTC
    local now = os.time()
    local tomorrow = os.date("!*t", now + 86400)
    local until_at = string.format("%04d-%02d-%02dT09:00:00Z", tomorrow.year, tomorrow.month, tomorrow.day)
    local s, body = host:request("POST", "/api/tasks/" .. tasks[1].id .. "/snooze",
      { token = h.token(user), body = { ["until"] = until_at } })
    assert.are.equal(200, s, json.encode(body))
    local r = chat(user, "snooze the chat dentist reminder until tomorrow at 9am")
    assert.are.equal(1, #r.tool_calls, json.encode(r))
    local c = r.tool_calls[1]
    assert.are.equal("snooze_reminder", c.name)
    assert.are.equal(tasks[2].id, c.arguments.id)
    assert.is_nil(c.result.error, json.encode(c.result))
    assert.are.equal(body.remind_at, c.result.remind_at)
    assert.matches("Snoozed the reminder of \"chat dentist\" until tomorrow 09:00", r.response, 1, true)
    local rest_row, chat_row = snooze_row(tasks[1].id), snooze_row(tasks[2].id)
    assert.truthy(rest_row:find("|scheduled|t", 1, true), rest_row)
    assert.are.equal(rest_row, chat_row)
  end)

  it("an MCP snooze re-arms the reminder: it fires again", function()
    local t = tasks[3]
    local result = mcp(user, "snooze_reminder", { id = t.id, ["for"] = "PT2S" })
    assert.is_false(result.isError, json.encode(result))
    assert.are.equal(t.id, result.structuredContent.task.id)
    assert.is_string(result.structuredContent.remind_at)
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 2 end, 8), host:log())
  end)

  it("refuses bad snoozes with the REST route's messages and writes nothing", function()
    local t = tasks[4]
    for _, c in ipairs {
      { { ["for"] = "soon" }, "for must be an ISO 8601 duration" },
      { { ["for"] = "PT0M" }, "for must be longer than zero" },
      { { ["until"] = n.iso(os.time() - 60) }, "until must be in the future" },
      { {}, "send exactly one of" },
    } do
      local args = c[1]
      args.id = t.id
      local result = mcp(user, "snooze_reminder", args)
      assert.is_true(result.isError, json.encode(args))
      assert.truthy(result.structuredContent.error.message:find(c[2], 1, true), result.structuredContent.error.message)
    end
    assert.are.equal("", snooze_row(t.id))
  end)

  it("another user's task is 'not found' in chat and MCP, and gets no snooze", function()
    local t = tasks[4]
    local r = chat(other, "snooze task " .. t.id .. " for 10 minutes")
    assert.are.equal("not_found", r.tool_calls[1].result.error.code)
    assert.matches("couldn't find", r.response)
    local result = mcp(other, "snooze_reminder", { id = t.id, ["for"] = "PT10M" })
    assert.is_true(result.isError)
    assert.are.equal("not_found", result.structuredContent.error.code)
    assert.are.equal("", snooze_row(t.id))
  end)

  it("a task whose reminder has not fired gets a helpful answer, not a 500", function()
    local fresh = n.task(host, user, { title = "quiet plumber" })
    local r = chat(user, "snooze the plumber reminder for 10 minutes")
    assert.are.equal("snooze_reminder", r.tool_calls[1].name)
    assert.are.equal(fresh.id, r.tool_calls[1].arguments.id)
    assert.are.equal("nothing_to_snooze", r.tool_calls[1].result.error.code)
    assert.matches("No reminder of that task has fired yet", r.response, 1, true)
    local s = host:request("POST", "/api/tasks/" .. tasks[4].id .. "/complete", { token = h.token(user) })
    assert.are.equal(200, s)
    r = chat(user, "remind me again in an hour about the mcp bad task")
    assert.are.equal("task_completed", r.tool_calls[1].result.error.code, json.encode(r))
    assert.matches("reopen it", r.response, 1, true)
    assert.are.equal("", snooze_row(fresh.id))
  end)

  it("logged no handler failure (no 500) along the way", function()
    assert.is_nil(host:log():find('"level":"error"', 1, true), host:log():sub(-3000))
  end)
end)

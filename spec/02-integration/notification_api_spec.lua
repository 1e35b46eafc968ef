-- The notifications and snooze routes (issue 15): newest first with keyset pages and
-- `unread=true`, the unread count, marking read, snoozing a reminder that fired; every
-- route scoped to the caller (another user's notification or task is a 404), and bad
-- input answered with a precise 4xx and no write.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"

describe("notifications API", function()
  local host
  local user, other = "api-owner", "api-other"
  local tasks = {}
  setup(function()
    host = n.start()
    local at = os.time() + 2
    for i = 1, 5 do
      tasks[i] = n.task(host, user, { title = "n" .. i, due_at = n.iso(at + 600),
        reminders = { { at = n.iso(at) } } })
    end
    assert(h.eventually(function() return n.count(host) == 5 end, 8), host:log())
  end)
  teardown(function() host:stop() end)

  local function get(path, who)
    return host:request("GET", path, { token = h.token(who or user) })
  end
  local function post(path, body, who)
    return host:request("POST", path, { token = h.token(who or user), body = body })
  end

  it("lists newest first in keyset pages that neither skip nor repeat", function()
    local seen, cursor, pages = {}, nil, 0
    local all = {}
    repeat
      local s, body = get("/api/notifications?limit=2" .. (cursor and ("&cursor=" .. cursor) or ""))
      assert.are.equal(200, s, json.encode(body))
      pages = pages + 1
      for _, item in ipairs(body.items) do
        assert.is_nil(seen[item.id])
        seen[item.id] = true
        all[#all + 1] = item
      end
      cursor = body.next_cursor ~= json.null and body.next_cursor or nil
    until not cursor
    assert.are.equal(5, #all)
    assert.are.equal(3, pages)
    for i = 2, #all do
      assert.is_true(all[i - 1].created_at > all[i].created_at
        or (all[i - 1].created_at == all[i].created_at and all[i - 1].id > all[i].id))
    end
    local item = all[1]
    assert.are.equal("reminder", item.kind)
    assert.is_false(item.read)
    assert.is_false(item.late)
    assert.truthy(item.task_id and item.title and item.remind_at and item.due_at)
  end)

  it("refuses bad list parameters precisely", function()
    local s, body = get("/api/notifications?limit=0")
    assert.are.equal(422, s)
    assert.are.equal("limit", body.error.field)
    s, body = get("/api/notifications?unread=yes")
    assert.are.equal(422, s)
    assert.are.equal("unread", body.error.field)
    s, body = get("/api/notifications?sort=old")
    assert.are.equal(422, s)
    assert.truthy(body.error.message:find("unknown query parameter", 1, true))
    s, body = get("/api/notifications?cursor=abc.def")
    assert.are.equal(422, s)
    assert.are.equal("invalid_cursor", body.error.code)
    -- a cursor is the user's own
    local _, page = get("/api/notifications?limit=1")
    s, body = get("/api/notifications?limit=1&cursor=" .. page.next_cursor, other)
    assert.are.equal(422, s)
    assert.are.equal("invalid_cursor", body.error.code)
    s = get("/api/notifications/unread-count?x=1")
    assert.are.equal(422, s)
  end)

  it("counts unread, marks one and all read, and keeps other users out", function()
    local s, body = get("/api/notifications/unread-count")
    assert.are.equal(200, s)
    assert.are.equal(5, body.unread)
    local _, list = get("/api/notifications")
    local first = list.items[1]
    -- another user: nothing to see, nothing to mark
    s, body = get("/api/notifications", other)
    assert.are.equal(200, s)
    assert.are.equal(0, #body.items)
    s = post("/api/notifications/" .. first.id .. "/read", nil, other)
    assert.are.equal(404, s)
    s, body = get("/api/notifications/unread-count", other)
    assert.are.equal(200, s)
    assert.are.equal(0, body.unread)
    s = post("/api/notifications/not-a-uuid/read")
    assert.are.equal(404, s)
    -- the owner
    s, body = post("/api/notifications/" .. first.id .. "/read")
    assert.are.equal(200, s)
    assert.is_true(body.read)
    local read_at = body.read_at
    s, body = post("/api/notifications/" .. first.id .. "/read")
    assert.are.equal(200, s)
    assert.are.equal(read_at, body.read_at)
    s, body = get("/api/notifications/unread-count")
    assert.are.equal(200, s)
    assert.are.equal(4, body.unread)
    s, body = get("/api/notifications?unread=true")
    assert.are.equal(200, s)
    assert.are.equal(4, #body.items)
    for _, item in ipairs(body.items) do assert.are_not.equal(first.id, item.id) end
    s, body = post("/api/notifications/read-all")
    assert.are.equal(200, s)
    assert.are.equal(4, body.marked_read)
    s, body = get("/api/notifications/unread-count")
    assert.are.equal(200, s)
    assert.are.equal(0, body.unread)
  end)

  it("snoozes a reminder that fired: for a duration and until an instant", function()
    local t = tasks[1]
    local s, body = post("/api/tasks/" .. t.id .. "/snooze", { ["for"] = "PT2S" })
    assert.are.equal(200, s, json.encode(body))
    assert.are.equal(t.id, body.task_id)
    assert.truthy(h.eventually(function() return n.count(host, t.id) == 2 end, 6), host:log())
    local until_at = n.iso(os.time() + 2)
    s, body = post("/api/tasks/" .. tasks[2].id .. "/snooze", { ["until"] = until_at })
    assert.are.equal(200, s, json.encode(body))
    assert.are.equal(until_at, body.remind_at)
    assert.truthy(h.eventually(function() return n.count(host, tasks[2].id) == 2 end, 6))
    -- snoozing again moves the snooze; completing the task cancels it
    s = post("/api/tasks/" .. tasks[3].id .. "/snooze", { ["for"] = "PT2S" })
    assert.are.equal(200, s)
    s = post("/api/tasks/" .. tasks[3].id .. "/complete")
    assert.are.equal(200, s)
    h.sleep(3)
    assert.are.equal(1, n.count(host, tasks[3].id))
    s, body = post("/api/tasks/" .. tasks[3].id .. "/snooze", { ["for"] = "PT2S" })
    assert.are.equal(409, s)
    assert.are.equal("task_completed", body.error.code)
  end)

  it("refuses bad snoozes precisely and never touches another user's task", function()
    local t = tasks[4]
    local cases = {
      { {}, nil, "exactly one of" },
      { { ["for"] = "PT1M", ["until"] = n.iso(os.time() + 60) }, nil, "exactly one of" },
      { { ["for"] = "10 minutes" }, "for", "ISO 8601 duration" },
      { { ["for"] = "PT0M" }, "for", "longer than zero" },
      { { ["for"] = "P2Y" }, "for", "at most a year" },
      { { ["until"] = "tomorrow" }, "until", "RFC 3339" },
      { { ["until"] = n.iso(os.time() - 10) }, "until", "in the future" },
      { { ["until"] = n.iso(os.time() + 400 * 86400) }, "until", "within a year" },
      { { ["for"] = "PT1M", by = 1 }, "by", "unknown field" },
    }
    for _, c in ipairs(cases) do
      local s, body = post("/api/tasks/" .. t.id .. "/snooze", c[1])
      assert.are.equal(422, s, json.encode(c[1]))
      assert.are.equal(c[2], body.error.field, json.encode(c[1]))
      assert.truthy(body.error.message:find(c[3], 1, true), body.error.message)
    end
    local s, body = post("/api/tasks/" .. t.id .. "/snooze", { ["for"] = "PT1M" }, other)
    assert.are.equal(404, s, json.encode(body))
    s = post("/api/tasks/00000000-0000-4000-8000-000000000000/snooze", { ["for"] = "PT1M" })
    assert.are.equal(404, s)
    local fresh = n.task(host, user, { title = "never reminded" })
    s, body = post("/api/tasks/" .. fresh.id .. "/snooze", { ["for"] = "PT1M" })
    assert.are.equal(409, s)
    assert.are.equal("nothing_to_snooze", body.error.code)
    -- none of these wrote a snooze
    assert.are.equal("0", h.psql("SELECT count(*) FROM reminder_schedule WHERE rkey = 'snooze' AND task_id IN ('"
      .. t.id .. "', '" .. fresh.id .. "')", host.database_url))
    s = host:request("POST", "/api/tasks/" .. t.id .. "/snooze",
      { token = h.token(user), body = "for=PT1M", headers = { ["Content-Type"] = "text/plain" } })
    assert.are.equal(415, s)
    s = host:request("POST", "/api/tasks/" .. t.id .. "/snooze", { body = { ["for"] = "PT1M" } })
    assert.are.equal(401, s)
  end)
end)

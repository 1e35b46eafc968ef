-- The event bus (issue 4) with BUS=postgres: the API publishes one event per task change
-- on task-events and task-updates (bulk included), the events validate against
-- spec/contracts/events/, a rolled-back transaction publishes nothing; consumers get
-- every event once per group, in order per key, never twice at the same time, with
-- dead letters and replay (`todo-host events retry`).
local h = require "spec.helpers"
local json = require "json"

local BUNDLES = { "services/api", "spec/fixtures/events-consumer" }

local function sql(host, q)
  return h.psql(q, host.database_url)
end

local function count(host, q)
  return tonumber(sql(host, q))
end

local function req(host, method, path, body, user, headers)
  return host:request(method, path, { token = h.token(user or "alice"), body = body, headers = headers })
end

-- Events of the outbox as [{topic=, event=}] (decoded), in log order.
local function outbox(host)
  local out = sql(host, [[SELECT coalesce(json_agg(json_build_object('topic', topic, 'event', event)
    ORDER BY topic, part, seq), '[]') FROM bus_outbox]])
  return json.decode(out), out
end

local function drained(host, groups)
  return h.eventually(function()
    for _, g in ipairs(groups) do
      local behind = count(host, [[SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c
        JOIN bus_partitions p USING (topic, part) WHERE c.grp = ']] .. g .. "'")
      if behind ~= 0 then return false end
    end
    return true
  end, 20)
end

describe("event bus (postgres)", function()
  local host

  setup(function()
    host = h.start { bundles = BUNDLES, env = { BUS_POLL_SECONDS = 0.5 } }
  end)

  teardown(function()
    if host then host:stop() end
  end)

  it("publishes one valid event per change on both topics, bulk included", function()
    local s, t = req(host, "POST", "/api/tasks", { title = "first", tags = { "a" }, due_at = "2030-01-02T10:00:00Z" })
    assert.are.equal(201, s)
    local id = t.id
    assert.are.equal(200, (req(host, "PATCH", "/api/tasks/" .. id, { title = "renamed", priority = "high" })))
    assert.are.equal(200, (req(host, "POST", "/api/tasks/" .. id .. "/complete")))
    assert.are.equal(200, (req(host, "POST", "/api/tasks/" .. id .. "/reopen")))
    local ids = {}
    for i = 1, 3 do
      local st, b = req(host, "POST", "/api/tasks", { title = "bulk " .. i, due_at = "2030-01-0" .. i .. "T09:00:00Z" })
      assert.are.equal(201, st)
      ids[i] = b.id
    end
    for _, action in ipairs { "complete", "reopen" } do
      assert.are.equal(200, (req(host, "POST", "/api/tasks/bulk", { action = action, ids = ids })))
    end
    assert.are.equal(200, (req(host, "POST", "/api/tasks/bulk",
      { action = "update", ids = ids, changes = { priority = "low" } })))
    assert.are.equal(200, (req(host, "POST", "/api/tasks/bulk",
      { action = "reschedule", ids = ids, shift = { days = 1 } })))
    assert.are.equal(200, (req(host, "POST", "/api/tasks/bulk", { action = "delete", ids = ids })))
    assert.are.equal(204, (req(host, "DELETE", "/api/tasks/" .. id)))
    -- a refused change publishes nothing
    assert.are.equal(404, (req(host, "PATCH", "/api/tasks/" .. id, { title = "gone" })))

    local events, raw = outbox(host)
    local by_topic, kinds = { ["task-events"] = {}, ["task-updates"] = {} }, {}
    for _, e in ipairs(events) do
      table.insert(by_topic[e.topic], e.event)
      if e.topic == "task-events" then
        local k = e.event.subject .. ":" .. e.event.data.event_type
        kinds[k] = (kinds[k] or 0) + 1
        assert.are.equal("alice", e.event.data.user_id)
        assert.are.equal("todo-chatbot/api", e.event.source)
      end
    end
    -- first task: created, updated, completed, reopened, deleted; each bulk task:
    -- created, completed, reopened, updated (priority), updated (reschedule), deleted
    assert.are.equal(5 + 3 * 6, #by_topic["task-events"])
    assert.are.equal(#by_topic["task-events"], #by_topic["task-updates"])
    for _, k in ipairs { "created", "updated", "completed", "reopened", "deleted" } do
      assert.are.equal(1, kinds[id .. ":" .. k], k)
    end
    for _, bid in ipairs(ids) do
      assert.are.equal(2, kinds[bid .. ":updated"])
      assert.are.equal(1, kinds[bid .. ":deleted"])
    end
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(raw)
    f:close()
    local out, ok = h.sh("python3 spec/contracts/events/validate.py " .. path)
    os.remove(path)
    assert(ok, out)
  end)

  it("publishes nothing for a rolled-back transaction, and only with a transaction", function()
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local pg, bus = require "pg", require "bus"
      assert(not pcall(bus.publish, nil, "task-events", "task.created", {}, { key = "u" }))
      local r = pg.tx(function(tx)
        assert(bus.publish(tx, "task-events", "task.created", { n = 1 }, { key = "rollback-user" }))
        return nil, "changed my mind"
      end)
      assert(r == nil)
      assert(not pcall(pg.tx, function(tx)
        assert(bus.publish(tx, "task-events", "task.created", { n = 2 }, { key = "rollback-user" }))
        error("boom")
      end))
      assert(pg.tx(function(tx)
        return bus.publish(tx, "test-topic", "test.created", { n = 3 }, { key = "commit-user" })
      end))
      print((pg.query("SELECT count(*) AS n FROM bus_outbox WHERE key = 'rollback-user'"))[1].n)
    ]])
    f:close()
    local out, ok = h.sh("DATABASE_URL=" .. h.sh_quote(host.database_url) .. " TODO_LUA_ROOT=lua "
      .. h.sh_quote(h.host_bin) .. " script " .. script)
    os.remove(script)
    assert(ok, out)
    assert.are.equal("0", out:match("(%d+)%s*$"))
    assert.are.equal(1, count(host, "SELECT count(*) FROM bus_outbox WHERE key = 'commit-user'"))
    -- the partition's sequence has no gap: the committed event took the next number
    assert.are.equal(0, count(host, [[SELECT count(*) FROM bus_outbox o WHERE key = 'commit-user'
      AND seq <> (SELECT last_seq FROM bus_partitions p WHERE p.topic = o.topic AND p.part = o.part)
      AND NOT EXISTS (SELECT 1 FROM bus_outbox x WHERE x.topic = o.topic AND x.part = o.part AND x.seq > o.seq)]]))
  end)

  it("delivers every event once per group, in order per key", function()
    for u = 1, 4 do
      local user = "order-" .. u
      local _, t = req(host, "POST", "/api/tasks", { title = "t" .. u }, user)
      for v = 1, 5 do req(host, "PATCH", "/api/tasks/" .. t.id, { title = "t" .. u .. "." .. v }, user) end
    end
    assert(drained(host, { "fx-a", "fx-b", "history" }), "consumers did not catch up")
    for _, g in ipairs { "fx-a", "fx-b" } do
      assert.are.equal(0, count(host, [[SELECT count(*) FROM (SELECT event_id FROM fx_effects WHERE grp = ']]
        .. g .. [[' GROUP BY event_id HAVING count(*) > 1) d]]))
      assert.are.equal(count(host, "SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'")
        - count(host, "SELECT count(*) FROM bus_dead_letters WHERE grp = '" .. g .. "' AND replayed_at IS NULL"),
        count(host, "SELECT count(*) FROM fx_effects WHERE grp = '" .. g .. "'"))
      -- per user, effects happened in the order of the log
      assert.are.equal(0, count(host, [[
        SELECT count(*) FROM (
          SELECT f.user_id, o.seq, lag(o.seq) OVER (PARTITION BY f.user_id ORDER BY f.id) AS prev
            FROM fx_effects f JOIN bus_outbox o ON o.id = f.event_id AND o.topic = 'task-events'
           WHERE f.grp = ']] .. g .. [[') x WHERE prev > seq]]))
    end
  end)

  it("keeps no idempotency records for an idempotent group (history), still one effect per event", function()
    for v = 1, 3 do
      local _, t = req(host, "POST", "/api/tasks", { title = "idem " .. v }, "idem-user")
      req(host, "POST", "/api/tasks/" .. t.id .. "/complete", nil, "idem-user")
    end
    assert(drained(host, { "fx-a", "history" }), "consumers did not catch up")
    assert.are.equal(0, count(host, "SELECT count(*) FROM bus_inbox WHERE grp = 'history'"))
    assert.is_true(count(host, "SELECT count(*) FROM bus_inbox WHERE grp = 'fx-a'") >= 6)
    local events = count(host, [[SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'
      AND key = 'idem-user']])
    assert.are.equal(6, events)
    assert.are.equal(6, count(host, "SELECT count(*) FROM task_history WHERE user_id = 'idem-user'"))
    -- a rewound cursor redelivers everything: the history's own key keeps one row each
    sql(host, "UPDATE bus_cursors SET seq = 0 WHERE grp = 'history'")
    sql(host, "NOTIFY todo_bus")
    assert(drained(host, { "history" }))
    assert.are.equal(6, count(host, "SELECT count(*) FROM task_history WHERE user_id = 'idem-user'"))
    assert.are.equal(0, count(host, [[SELECT count(*) FROM (SELECT event_id FROM task_history
      GROUP BY event_id HAVING count(*) > 1) d]]))
  end)

  it("redelivery after a rewound cursor changes nothing (idempotent consumers)", function()
    local before = count(host, "SELECT count(*) FROM fx_effects WHERE grp = 'fx-b'")
    sql(host, "UPDATE bus_cursors SET seq = 0 WHERE grp = 'fx-b'")
    sql(host, "NOTIFY todo_bus")
    assert(drained(host, { "fx-b" }))
    assert.are.equal(before, count(host, "SELECT count(*) FROM fx_effects WHERE grp = 'fx-b'"))
  end)

  it("retries a failing handler, dead-letters the event, keeps going, and replays it", function()
    local s, t = req(host, "POST", "/api/tasks", { title = "fail me" }, "dl-user")
    assert.are.equal(201, s)
    req(host, "PATCH", "/api/tasks/" .. t.id, { description = "after" }, "dl-user")
    assert.truthy(h.eventually(function()
      return count(host, "SELECT count(*) FROM bus_dead_letters WHERE replayed_at IS NULL") == 4
    end, 15), sql(host, "SELECT grp, attempts, error FROM bus_dead_letters"))
    assert.are.equal(3, count(host, "SELECT max(attempts) FROM bus_dead_letters"))
    local out, ok = h.sh("DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin)
      .. " events dead-letters fx-a")
    assert(ok, out)
    assert.truthy(out:find("fixture refuses fail me", 1, true), out)
    -- the partition was not blocked: a later event of the user was handled
    assert(drained(host, { "fx-a", "fx-b" }))
    local id = sql(host, "SELECT min(id) FROM bus_dead_letters WHERE grp = 'fx-a'")
    -- still refused: the replay fails again and says so
    out, ok = h.sh("DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin)
      .. " events retry " .. id)
    assert.is_falsy(ok, out)
    sql(host, "INSERT INTO fx_allow VALUES ('" .. t.id .. "')")
    out, ok = h.sh("DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin)
      .. " events retry " .. id)
    assert(ok, out)
    assert.truthy(out:find("replayed", 1, true), out)
    local ev = sql(host, "SELECT event_id FROM bus_dead_letters WHERE id = " .. id)
    assert.are.equal(1, count(host, "SELECT count(*) FROM fx_effects WHERE grp = 'fx-a' AND event_id = '" .. ev .. "'"))
  end)

  it("shares a group between replicas without processing one key twice at once", function()
    local other = h.start { bundles = BUNDLES, database_url = host.database_url, skip_migrate = true,
      env = { FX_DELAY = 0.003, FX_REPLICA = "other" } }
    finally(function() other:stop() end)
    for round = 1, 6 do
      for u = 1, 6 do
        local user = "rep-" .. u
        req(host, "POST", "/api/tasks", { title = "r" .. round }, user)
        req(other, "POST", "/api/tasks", { title = "s" .. round }, user)
      end
    end
    assert(drained(host, { "fx-a", "fx-b" }))
    for _, g in ipairs { "fx-a", "fx-b" } do
      assert.are.equal(0, count(host, [[SELECT count(*) FROM (SELECT event_id FROM fx_effects WHERE grp = ']]
        .. g .. [[' GROUP BY event_id HAVING count(*) > 1) d]]))
      -- runs for one user never overlap in time, and follow the log
      assert.are.equal(0, count(host, [[
        SELECT count(*) FROM (
          SELECT f.started_at, o.seq,
                 lag(f.finished_at) OVER w AS prev_end, lag(o.seq) OVER w AS prev_seq
            FROM fx_effects f JOIN bus_outbox o ON o.id = f.event_id AND o.topic = 'task-events'
           WHERE f.grp = ']] .. g .. [[' AND f.user_id LIKE 'rep-%'
          WINDOW w AS (PARTITION BY f.user_id ORDER BY f.started_at)) x
         WHERE prev_end > started_at OR prev_seq > seq]]))
    end
    -- both replicas did part of the work (by the claim of each partition)
    assert.are.equal(72, count(host, "SELECT count(*) FROM fx_effects WHERE grp = 'fx-b' AND user_id LIKE 'rep-%'"))
    for _, replica in ipairs { "main", "other" } do
      local n = count(host, "SELECT count(*) FROM fx_effects WHERE grp = 'fx-b' AND user_id LIKE 'rep-%' "
        .. "AND replica = '" .. replica .. "'")
      assert.is_true(n > 0 and n < 72, replica .. " handled " .. n .. " of 72")
    end
  end)
end)

-- Crash safety of the bus (issue 4): writes arrive at a steady rate while the host is
-- killed with SIGKILL at random moments and restarted, several times. Afterwards every
-- committed change (the tasks' versions are the ground truth) has exactly one event and
-- exactly one effect in every subscription group, and nothing else.
local h = require "spec.helpers"
local socket = require "socket"

describe("event bus crash safety", function()
  it("gives every committed change exactly one effect per group across SIGKILLs", function()
    local host = h.start { bundles = { "services/api", "spec/fixtures/events-consumer" } }
    finally(function() host:stop() end)
    local function q(sql) return h.psql(sql, host.database_url) end
    local users = { "crash-1", "crash-2", "crash-3" }
    local tasks = {}
    math.randomseed(os.time())
    local kills, writes, refused = 0, 0, 0
    local next_kill = socket.gettime() + 0.3 + math.random() * 0.7
    local stop_at = socket.gettime() + 7
    local i = 0
    while socket.gettime() < stop_at do
      i = i + 1
      local user = users[i % #users + 1]
      local status
      if not tasks[user] or i % 4 == 0 then
        local s, b = host:request("POST", "/api/tasks",
          { token = h.token(user), body = { title = "c" .. i }, timeout = 2 })
        if s == 201 then tasks[user] = b.id end
        status = s
      else
        status = host:request("PATCH", "/api/tasks/" .. tasks[user],
          { token = h.token(user), body = { title = "c" .. i }, timeout = 2 })
      end
      if status then writes = writes + 1 else refused = refused + 1 end
      if kills < 4 and socket.gettime() >= next_kill then
        host:kill()
        kills = kills + 1
        host:spawn()
        assert(host:wait_ready(15), "host did not restart:\n" .. host:log())
        next_kill = socket.gettime() + 0.3 + math.random() * 0.9
      end
      h.sleep(0.01) -- about 60 writes a second
    end
    assert.are.equal(4, kills)
    assert.is_true(writes > 100, "too few writes: " .. writes)
    -- every consumer catches up
    assert.truthy(h.eventually(function()
      return q([[SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c
        JOIN bus_partitions p USING (topic, part) WHERE c.grp IN ('fx-a', 'fx-b', 'history')]]) == "0"
    end, 30), "consumers did not catch up")
    -- committed changes: a task at version v went through v changes
    local changes = tonumber(q("SELECT sum(version) FROM tasks"))
    assert.are.equal(changes, tonumber(q("SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'")))
    assert.are.equal(changes, tonumber(q("SELECT count(*) FROM bus_outbox WHERE topic = 'task-updates'")))
    -- one event per (task, version), and one effect per event and group
    assert.are.equal("0", q([[SELECT count(*) FROM (SELECT event->>'subject', event->'data'->>'version'
      FROM bus_outbox WHERE topic = 'task-events' GROUP BY 1, 2 HAVING count(*) <> 1) d]]))
    for _, g in ipairs { "fx-a", "fx-b" } do
      assert.are.equal(changes, tonumber(q("SELECT count(*) FROM fx_effects WHERE grp = '" .. g .. "'")), g)
      assert.are.equal(changes,
        tonumber(q("SELECT count(DISTINCT event_id) FROM fx_effects WHERE grp = '" .. g .. "'")))
      assert.are.equal("0", q([[SELECT count(*) FROM fx_effects f WHERE grp = ']] .. g .. [['
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = f.task_id AND f.version <= t.version)]]))
    end
    assert.are.equal(changes, tonumber(q("SELECT count(*) FROM task_history")))
    assert.are.equal("0", q("SELECT count(*) FROM bus_dead_letters"))
  end)
end)

-- The history consumer's batch form (tasks.history.on_events, the subscription's
-- batch_handler): several changes of one task committed together reach the consumer in
-- one batch, and each entry's `before` is the previous change of that task even though
-- the batch is written by one statement; a bad event in a batch falls back to the
-- event-by-event path (the good events are recorded, the bad one is dead-lettered).
local h = require "spec.helpers"
local json = require "json"

-- Publish `events` (CloudEvents) on task-events in one transaction, as the outbox does.
local function publish(host, key, events)
  local list = json.encode(events):gsub("'", "''")
  h.psql(string.format([[
    WITH p AS (INSERT INTO bus_partitions AS bp (topic, part, last_seq) VALUES ('task-events', 0, %d)
               ON CONFLICT (topic, part) DO UPDATE SET last_seq = bp.last_seq + %d RETURNING last_seq)
    INSERT INTO bus_outbox (topic, part, seq, id, key, event)
    SELECT 'task-events', 0, p.last_seq - %d + a.n, (a.e->>'id')::uuid, '%s', a.e
      FROM p, jsonb_array_elements('%s'::jsonb) WITH ORDINALITY AS a(e, n)]],
    #events, #events, #events, key, list), host.database_url)
end

local seq = 0
local function event(user, task_id, kind, title, version)
  seq = seq + 1
  return {
    specversion = "1.0", id = string.format("00000000-0000-4000-8000-%012d", seq),
    source = "spec", type = "task." .. kind, subject = task_id, time = "2026-01-01T00:00:0" .. seq .. "Z",
    datacontenttype = "application/json",
    data = {
      event_type = kind, task_id = task_id, user_id = user, version = version,
      changed = kind == "created" and { "title" } or { "title" },
      task_data = { id = task_id, title = title, version = version },
      timestamp = "2026-01-01T00:00:00Z",
    },
  }
end

local function entries(host, task_id)
  local out = h.psql(string.format([[SELECT coalesce(json_agg(json_strip_nulls(json_build_object('kind', kind,
    'before', before->>'title', 'title', task->>'title')) ORDER BY id), '[]') FROM task_history
    WHERE task_id = '%s']], task_id), host.database_url)
  return json.decode(out)
end

describe("task history in batches", function()
  local host
  setup(function()
    host = h.start { bundles = { "services/api" },
      env = { BUS_MAX_ATTEMPTS = 2, BUS_BACKOFF_SECONDS = 0.05, BUS_POLL_SECONDS = 0.2 } }
  end)
  teardown(function() if host then host:stop() end end)

  it("chains `before` through the changes of one batch", function()
    local id = "11111111-1111-4111-8111-111111111111"
    publish(host, "batchy", {
      event("batchy", id, "created", "a", 1),
      event("batchy", id, "updated", "b", 2),
      event("batchy", id, "completed", "c", 3),
    })
    local got = h.eventually(function()
      local e = entries(host, id)
      return #e == 3 and e
    end, 10)
    assert.are.same({
      { kind = "created", title = "a" },
      { kind = "updated", title = "b", before = "a" },
      { kind = "completed", title = "c", before = "b" },
    }, got)
  end)

  it("falls back to one event at a time when the batch fails", function()
    local id = "22222222-2222-4222-8222-222222222222"
    local bad = event("batchy", id, "updated", "x", 9)
    bad.data = { nonsense = true }
    publish(host, "batchy", {
      event("batchy", id, "created", "a", 1),
      bad,
      event("batchy", id, "updated", "b", 2),
    })
    local got = h.eventually(function()
      local e = entries(host, id)
      return #e == 2 and e
    end, 15)
    assert.are.same({
      { kind = "created", title = "a" },
      { kind = "updated", title = "b", before = "a" },
    }, got)
    local dead = h.psql("SELECT count(*) FROM bus_dead_letters WHERE grp = 'history' AND event_id = '"
      .. bad.id .. "'", host.database_url)
    assert.are.equal(1, tonumber(dead))
  end)
end)

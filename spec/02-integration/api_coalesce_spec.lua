-- Coalesced task reads and writes (lua/tasks/coalesce.lua) against a real
-- PostgreSQL, in two layers:
--  * deterministic batches: a Lua chunk in a child `todo-host script` starts coroutines in
--    one loop turn that call tasks.coalesce directly, so they meet in one batch for sure
--    (checked with coalesce.stats()); the database is then inspected with psql;
--  * through HTTP: many requests on many connections at once (batched or not, every answer
--    must be the one the request would get alone, for the right user).
local h = require "spec.helpers"
local json = require "json"
local socket = require "socket"

-- What every child chunk starts with: the API bundle's modules, then lua/ (a bundle
-- finds them this way; a script sets the path itself), and `together(fns)`, which starts
-- one coroutine per function in this turn and returns `table.pack(pcall(fn))` of each.
local PRELUDE = [[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local task = require "task"
local json = require "json"
local coalesce = require "tasks.coalesce"
local repo = require "tasks.repo"
local function together(fns)
  local out, left, done = {}, #fns, task.event()
  for i, fn in ipairs(fns) do
    task.spawn(function()
      out[i] = table.pack(pcall(fn))
      left = left - 1
      if left == 0 then done:set() end
    end)
  end
  if left > 0 then done:wait() end
  return out
end
-- One answer as JSON: ok (pcall), error (raised), r1..r3 (returned values, r1_nil).
local function shape(r)
  if not r[1] then return { ok = false, error = tostring(r[2]) } end
  return { ok = true, r1 = r[2], r1_nil = r[2] == nil, r2 = r[3], r3 = r[4] }
end
local function shapes(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = shape(r) end
  return out
end
local function delta(before, after)
  return { batches = after.batches - before.batches, items = after.items - before.items }
end
local function emit(v) print("RESULT " .. json.encode(v)) end
]]

-- Run PRELUDE .. code in a child host with DATABASE_URL = url; returns the decoded
-- RESULT line and the whole output.
local function child(url, code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(PRELUDE, code)
  f:close()
  -- The batch settings keep their defaults whatever this process was given.
  local out, ok = h.sh("env -u API_BATCH_MAX -u API_BATCH_READS -u API_BATCH_WRITES"
    .. " DATABASE_URL=" .. h.sh_quote(url) .. " LOG_LEVEL=warn timeout 60 "
    .. h.sh_quote(h.host_bin) .. " script " .. h.sh_quote(path))
  os.remove(path)
  assert(ok, "the child host failed:\n" .. out)
  local line = out:match("RESULT ([^\n]+)")
  assert(line, "the child printed no result:\n" .. out)
  return assert(json.decode(line), "bad JSON from the child:\n" .. out), out
end

-- Rows of a query as decoded JSON objects (psql against `url`).
local function rows(url, sql)
  return json.decode(h.psql("SELECT coalesce(json_agg(x), '[]') FROM (" .. sql .. ") x", url))
end

local function count(url, sql)
  return tonumber(h.psql(sql, url))
end

-- Outbox rows of task events whose subject (the task id) is in `ids`, one summary each.
local function events_of(url, ids)
  return rows(url, "SELECT topic, key, event->>'type' AS type, event->>'subject' AS subject,"
    .. " event->'data'->>'user_id' AS user_id, event->'data'->'task_data'->>'id' AS data_id,"
    .. " (event->'data'->>'version')::int AS version"
    .. " FROM bus_outbox WHERE event->>'subject' = ANY('{" .. table.concat(ids, ",") .. "}'::text[])"
    .. " ORDER BY topic, subject")
end

describe("tasks.coalesce in one loop turn (child host)", function()
  local url

  lazy_setup(function()
    url = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(url) .. " " .. h.sh_quote(h.host_bin)
      .. " migrate services/api")
    assert(ok, "migrate failed: " .. out)
  end)

  describe("get", function()
    it("answers each (user, id) of one batch for that user only", function()
      local r = child(url, [[
        local A, B = "get-alice", "get-bob"
        local ta = assert(repo.create(A, { title = "alice's" }))
        local tb = assert(repo.create(B, { title = "bob's" }))
        local before = coalesce.stats().get
        local got = together {
          function() return coalesce.get(A, ta.id) end,
          function() return coalesce.get(B, ta.id) end, -- B asks for A's task
          function() return coalesce.get(B, tb.id) end,
          function() return coalesce.get(A, tb.id) end, -- A asks for B's task
          function() return coalesce.get(A, ta.id) end, -- the same (user, id) twice
          function() return coalesce.get(A, "00000000-0000-4000-8000-000000000000") end,
        }
        emit { a = ta.id, b = tb.id, got = shapes(got), stats = delta(before, coalesce.stats().get) }
      ]])
      assert.are.same({ batches = 1, items = 6 }, r.stats) -- one batch, one statement
      local got = r.got
      for i = 1, 6 do assert.is_true(got[i].ok, got[i].error) end
      assert.are.equal(r.a, got[1].r1.id)
      assert.are.equal("alice's", got[1].r1.title)
      assert.are.equal(false, got[2].r1) -- not found for B, though A's task with that id exists
      assert.are.equal(r.b, got[3].r1.id)
      assert.are.equal("bob's", got[3].r1.title)
      assert.are.equal(false, got[4].r1)
      assert.are.equal(r.a, got[5].r1.id)
      assert.are.equal(false, got[6].r1)
    end)

    it("gives a lone read the same answers (a batch of one goes through tasks.store)", function()
      local r = child(url, [[
        local t = assert(repo.create("lone-alice", { title = "mine" }))
        local before = coalesce.stats().get
        local mine = table.pack(coalesce.get("lone-alice", t.id))
        local theirs = table.pack(coalesce.get("lone-bob", t.id))
        emit { id = t.id, mine = mine[1], theirs = theirs[1], stats = delta(before, coalesce.stats().get) }
      ]])
      assert.are.same({ batches = 2, items = 2 }, r.stats)
      assert.are.equal(r.id, r.mine.id)
      assert.are.equal(false, r.theirs)
    end)
  end)

  describe("create", function()
    it("creates every task of one batch for its own user, with its events, in one transaction", function()
      local r = child(url, [[
        local A, B = "create-alice", "create-bob"
        local before = coalesce.stats().create
        local got = together {
          function() return coalesce.create(A, { title = "a1", priority = 2, tags = { "x", "y" } }) end,
          function() return coalesce.create(B, { title = "b1" }) end,
          function()
            return coalesce.create(A, { title = "a2", description = "d", due_at = "2026-05-01T09:00:00+02:00",
              tz = "Europe/Paris" })
          end,
          function() return coalesce.create(B, { title = "b2", completed = true }) end,
          function()
            return coalesce.create(A, { title = "a3", reminders = json.array { { at = "2026-05-01T08:50:00Z" } } })
          end,
        }
        emit { got = shapes(got), stats = delta(before, coalesce.stats().create) }
      ]])
      assert.are.same({ batches = 1, items = 5 }, r.stats)
      local titles = { "a1", "b1", "a2", "b2", "a3" }
      local owner = { a1 = "create-alice", b1 = "create-bob", a2 = "create-alice", b2 = "create-bob",
        a3 = "create-alice" }
      local ids, seen = {}, {}
      for i, g in ipairs(r.got) do
        assert.is_true(g.ok, g.error)
        assert.is_table(g.r1, "creation " .. i .. " failed: " .. tostring(g.r2) .. " " .. tostring(g.r3))
        local t = g.r1
        assert.are.equal(titles[i], t.title) -- each caller gets its own task back
        assert.is_nil(seen[t.id])
        seen[t.id] = true
        ids[i] = t.id
      end
      local t = {}
      for i, g in ipairs(r.got) do t[titles[i]] = g.r1 end
      assert.are.equal("medium", t.a1.priority)
      assert.are.same({ "x", "y" }, t.a1.tags)
      assert.are.equal("d", t.a2.description)
      assert.are.equal("2026-05-01T07:00:00Z", t.a2.due_at)
      assert.are.equal("Europe/Paris", t.a2.tz)
      assert.are.equal(true, t.b2.completed)
      assert.is_string(t.b2.completed_at)
      assert.are.equal(false, t.b1.completed)
      assert.are.same({}, t.b1.tags)
      assert.are.equal("none", t.b1.priority)
      assert.are.same({ { at = "2026-05-01T08:50:00Z" } }, t.a3.reminders)

      -- As stored: each row belongs to its caller's user.
      local stored = rows(url, "SELECT id::text AS id, user_id, title FROM tasks"
        .. " WHERE user_id IN ('create-alice', 'create-bob') ORDER BY title")
      assert.are.equal(5, #stored)
      for _, row in ipairs(stored) do
        assert.are.equal(owner[row.title], row.user_id)
        assert.is_true(seen[row.id])
      end
      -- One task.created per task on each topic, keyed and owned by the task's user.
      local events = events_of(url, ids)
      assert.are.equal(10, #events)
      local per = {}
      for _, e in ipairs(events) do
        assert.are.equal("task.created", e.type)
        assert.are.equal(e.subject, e.data_id)
        local title
        for name, task in pairs(t) do if task.id == e.subject then title = name end end
        assert.are.equal(owner[title], e.key)
        assert.are.equal(owner[title], e.user_id)
        assert.are.equal(1, e.version)
        per[e.topic .. " " .. e.subject] = (per[e.topic .. " " .. e.subject] or 0) + 1
      end
      for _, id in ipairs(ids) do
        assert.are.equal(1, per["task-events " .. id])
        assert.are.equal(1, per["task-updates " .. id])
      end
      -- One transaction wrote the five rows and their ten events.
      assert.are.equal(1, count(url, "SELECT count(DISTINCT x) FROM ("
        .. " SELECT xmin::text AS x FROM tasks WHERE user_id IN ('create-alice', 'create-bob')"
        .. " UNION ALL SELECT xmin::text FROM bus_outbox WHERE key IN ('create-alice', 'create-bob')) s"))
    end)

    it("runs each item of a rolled-back batch alone in its own request's coroutine", function()
      local r = child(url, [[
        local store = require "tasks.store"
        local create, ran = store.create, {}
        store.create = function(user, f, id) -- record which coroutine runs each lone creation
          ran[f.title] = coroutine.running()
          return create(user, f, id)
        end
        local callers, fns = {}, {}
        for i, f in ipairs {
          { title = "own1" }, { title = "own-bad", due_at = "9999-12-31T23:30:00-05:00" }, { title = "own2" },
        } do
          fns[i] = function()
            callers[f.title] = coroutine.running()
            return coalesce.create("own-alice", f)
          end
        end
        local before = coalesce.stats().create
        local got = together(fns)
        local same = {}
        for title, co in pairs(callers) do same[title] = ran[title] == co end
        emit { got = shapes(got), same = same, stats = delta(before, coalesce.stats().create) }
      ]])
      assert.are.same({ batches = 1, items = 3 }, r.stats)
      assert.are.same({ own1 = true, ["own-bad"] = true, own2 = true }, r.same)
      assert.is_table(r.got[1].r1)
      assert.is_true(r.got[2].r1_nil)
      assert.is_table(r.got[3].r1)
    end)

    it("falls back to one creation at a time when PostgreSQL refuses one item of the batch", function()
      local r = child(url, [[
        local A, B = "fallback-alice", "fallback-bob"
        local before = coalesce.stats().create
        local got = together {
          function() return coalesce.create(A, { title = "ok1", priority = 1, tags = { "t" } }) end,
          -- Valid RFC 3339 (year 9999 here), but year 10000 in UTC: the due_at CHECK refuses it.
          function() return coalesce.create(B, { title = "bad", due_at = "9999-12-31T23:30:00-05:00" }) end,
          function() return coalesce.create(B, { title = "ok2" }) end,
          function() return coalesce.create(A, { title = "ok3", description = "three" }) end,
        }
        emit { got = shapes(got), stats = delta(before, coalesce.stats().create) }
      ]])
      assert.are.same({ batches = 1, items = 4 }, r.stats)
      local bad = r.got[2]
      assert.is_true(bad.ok, bad.error)
      assert.is_true(bad.r1_nil)
      assert.is_string(bad.r2)
      assert.are.equal("23514", bad.r3)
      local ids = {}
      for _, i in ipairs({ 1, 3, 4 }) do
        local g = r.got[i]
        assert.is_true(g.ok, g.error)
        assert.is_table(g.r1, "creation " .. i .. " failed: " .. tostring(g.r2) .. " " .. tostring(g.r3))
        ids[#ids + 1] = g.r1.id
      end
      assert.are.equal("ok1", r.got[1].r1.title)
      assert.are.equal("ok2", r.got[3].r1.title)
      assert.are.equal("ok3", r.got[4].r1.title)
      assert.are.equal("three", r.got[4].r1.description)
      -- Exactly the three tasks that succeeded, for their users, and nothing of the refused one.
      local stored = rows(url, "SELECT id::text AS id, user_id, title FROM tasks"
        .. " WHERE user_id IN ('fallback-alice', 'fallback-bob') ORDER BY title")
      assert.are.same({
        { id = ids[1], user_id = "fallback-alice", title = "ok1" },
        { id = ids[2], user_id = "fallback-bob", title = "ok2" },
        { id = ids[3], user_id = "fallback-alice", title = "ok3" },
      }, stored)
      assert.are.equal(6, count(url, "SELECT count(*) FROM bus_outbox WHERE key IN ('fallback-alice', 'fallback-bob')"))
      local events = events_of(url, ids)
      assert.are.equal(6, #events)
      for _, e in ipairs(events) do assert.are.equal("task.created", e.type) end
    end)
  end)

  describe("set_completed", function()
    it("completes a task named twice in one batch once: one new version, one event", function()
      local r = child(url, [[
        local A = "twice-alice"
        local t = assert(repo.create(A, { title = "finish me" }))
        local before = coalesce.stats().set_completed
        local got = together {
          function() return coalesce.set_completed(A, t.id, true) end,
          function() return coalesce.set_completed(A, t.id, true) end,
        }
        emit { id = t.id, version = t.version, got = shapes(got),
          stats = delta(before, coalesce.stats().set_completed) }
      ]])
      assert.are.same({ batches = 1, items = 2 }, r.stats)
      assert.are.equal(1, r.version)
      for i = 1, 2 do
        local g = r.got[i]
        assert.is_true(g.ok, g.error)
        assert.is_table(g.r1, "call " .. i .. " failed: " .. tostring(g.r2) .. " " .. tostring(g.r3))
        assert.are.equal(r.id, g.r1.task.id)
        assert.are.equal(true, g.r1.task.completed)
        assert.are.equal(2, g.r1.task.version)
      end
      local stored = rows(url, "SELECT completed, version FROM tasks WHERE id = '" .. r.id .. "'")
      assert.are.same({ { completed = true, version = 2 } }, stored)
      local events = events_of(url, { r.id })
      local completed = 0
      for _, e in ipairs(events) do
        if e.type == "task.completed" then
          completed = completed + 1
          assert.are.equal("twice-alice", e.key)
          assert.are.equal(2, e.version)
        end
      end
      assert.are.equal(2, completed) -- one per topic: task-events and task-updates
      assert.are.equal(1, count(url, "SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'"
        .. " AND event->>'type' = 'task.completed' AND event->>'subject' = '" .. r.id .. "'"))
    end)

    it("answers another user's completion of a task as missing, in the same batch as its owner's", function()
      local r = child(url, [[
        local A, B = "owner-alice", "intruder-bob"
        local t = assert(repo.create(A, { title = "alice's" }))
        local tb = assert(repo.create(B, { title = "bob's" }))
        local before = coalesce.stats().set_completed
        local got = together {
          function() return coalesce.set_completed(B, t.id, true) end, -- B first in the batch
          function() return coalesce.set_completed(A, t.id, true) end,
          function() return coalesce.set_completed(B, tb.id, true) end,
          function() return coalesce.set_completed(A, tb.id, true) end,
        }
        emit { id = t.id, bid = tb.id, got = shapes(got), stats = delta(before, coalesce.stats().set_completed) }
      ]])
      assert.are.same({ batches = 1, items = 4 }, r.stats)
      for i = 1, 4 do assert.is_true(r.got[i].ok, r.got[i].error) end
      assert.are.same({ missing = true }, r.got[1].r1)
      assert.are.same({ missing = true }, r.got[4].r1)
      assert.are.equal(r.id, r.got[2].r1.task.id)
      assert.are.equal(true, r.got[2].r1.task.completed)
      assert.are.equal(2, r.got[2].r1.task.version)
      assert.are.equal(r.bid, r.got[3].r1.task.id)
      assert.are.equal(true, r.got[3].r1.task.completed)
      local stored = rows(url, "SELECT id::text AS id, user_id, completed, version FROM tasks"
        .. " WHERE id IN ('" .. r.id .. "', '" .. r.bid .. "') ORDER BY user_id")
      assert.are.same({
        { id = r.bid, user_id = "intruder-bob", completed = true, version = 2 },
        { id = r.id, user_id = "owner-alice", completed = true, version = 2 },
      }, stored)
      local completed = {}
      for _, e in ipairs(events_of(url, { r.id, r.bid })) do
        if e.type == "task.completed" then
          completed[#completed + 1] = e.topic .. " " .. e.subject .. " " .. e.key .. " " .. e.user_id
        end
      end
      table.sort(completed)
      local expected = {
        "task-events " .. r.id .. " owner-alice owner-alice", "task-updates " .. r.id .. " owner-alice owner-alice",
        "task-events " .. r.bid .. " intruder-bob intruder-bob",
        "task-updates " .. r.bid .. " intruder-bob intruder-bob",
      }
      table.sort(expected)
      assert.are.same(expected, completed)
    end)

    it("answers a task already in the asked state as it is, beside one that changes", function()
      local r = child(url, [[
        local A = "state-alice"
        local done = assert(repo.create(A, { title = "done", completed = true }))
        local open = assert(repo.create(A, { title = "open" }))
        local other = assert(repo.create(A, { title = "other" }))
        local before = coalesce.stats().set_completed
        local got = together {
          function() return coalesce.set_completed(A, done.id, true) end, -- already completed
          function() return coalesce.set_completed(A, open.id, false) end, -- already open
          function() return coalesce.set_completed(A, other.id, true) end,
        }
        emit { ids = { done.id, open.id, other.id }, got = shapes(got),
          stats = delta(before, coalesce.stats().set_completed) }
      ]])
      assert.are.same({ batches = 1, items = 3 }, r.stats)
      local want = { { true, 1 }, { false, 1 }, { true, 2 } }
      for i = 1, 3 do
        local g = r.got[i]
        assert.is_true(g.ok, g.error)
        assert.is_table(g.r1, "call " .. i .. " failed: " .. tostring(g.r2) .. " " .. tostring(g.r3))
        assert.are.equal(r.ids[i], g.r1.task.id)
        assert.are.equal(want[i][1], g.r1.task.completed)
        assert.are.equal(want[i][2], g.r1.task.version)
      end
      local changes = {}
      for _, e in ipairs(events_of(url, r.ids)) do
        if e.type ~= "task.created" then changes[#changes + 1] = e.type .. " " .. e.subject end
      end
      assert.are.same({ "task.completed " .. r.ids[3], "task.completed " .. r.ids[3] }, changes)
    end)
  end)
end)

-- `n` tasks titled "<prefix> <i>" for the token's user, created through `on` (a host); their ids.
local function create_tasks(on, token, n, prefix)
  local ids = {}
  for i = 1, n do
    local status, task = on:request("POST", "/api/tasks", { token = token, body = { title = prefix .. " " .. i } })
    assert.are.equal(201, status)
    ids[i] = task.id
  end
  return ids
end

-- Send every request of `reqs` ({method, path, token, body}) on its own connection:
-- connect all, then send all, then read the answers. Returns {status, body} each.
local function burst(port, reqs)
  local conns = {}
  for i = 1, #reqs do
    local c = socket.tcp()
    c:settimeout(30)
    assert(c:connect("127.0.0.1", port))
    conns[i] = c
  end
  for i, r in ipairs(reqs) do
    local body = r.body and json.encode(r.body)
    local head = r.method .. " " .. r.path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      .. "Authorization: Bearer " .. r.token .. "\r\n"
    if body then head = head .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n" end
    assert(conns[i]:send(head .. "\r\n" .. (body or "")))
  end
  local out = {}
  for i, c in ipairs(conns) do
    local status, raw = h.read_response(c)
    c:close()
    out[i] = { status = status, body = raw and raw ~= "" and json.decode(raw) or raw }
  end
  return out
end

describe("tasks.coalesce through HTTP", function()
  local host

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
  end)

  lazy_teardown(function()
    if host then host:stop() end
  end)

  local uid = h.uid

  it("answers concurrent reads of one user's tasks to that user only", function()
    local alice, bob = h.token(uid("alice")), h.token(uid("bob"))
    local ids = create_tasks(host, alice, 10, "read")
    for round = 1, 2 do
      local reqs = {}
      for i = 1, 10 do
        reqs[#reqs + 1] = { method = "GET", path = "/api/tasks/" .. ids[i], token = alice }
        reqs[#reqs + 1] = { method = "GET", path = "/api/tasks/" .. ids[i], token = bob }
      end
      local res = burst(host.port, reqs)
      for i = 1, 10 do
        local a, b = res[2 * i - 1], res[2 * i]
        assert.are.equal(200, a.status, "round " .. round .. ", alice's read of task " .. i)
        assert.are.equal(ids[i], a.body.id)
        assert.are.equal("read " .. i, a.body.title)
        assert.are.equal(404, b.status, "round " .. round .. ", bob's read of alice's task " .. i)
        assert.is_nil(b.body.id)
      end
    end
  end)

  it("creates one task per concurrent POST, for the user who sent it", function()
    local carol, dave = h.token(uid("carol")), h.token(uid("dave"))
    local reqs = {}
    for i = 1, 20 do
      reqs[#reqs + 1] = { method = "POST", path = "/api/tasks", token = carol, body = { title = "burst " .. i } }
      if i % 4 == 0 then
        reqs[#reqs + 1] = { method = "POST", path = "/api/tasks", token = dave, body = { title = "dave " .. i } }
      end
    end
    local res = burst(host.port, reqs)
    local carol_ids, dave_ids, seen = {}, {}, {}
    for i, r in ipairs(reqs) do
      local got = res[i]
      assert.are.equal(201, got.status, "request " .. i .. ": " .. json.encode(got.body))
      assert.are.equal(r.body.title, got.body.title) -- each request gets its own task
      assert.is_nil(seen[got.body.id])
      seen[got.body.id] = true
      if r.token == carol then carol_ids[#carol_ids + 1] = got.body.id else dave_ids[#dave_ids + 1] = got.body.id end
    end
    assert.are.equal(20, #carol_ids)
    assert.are.equal(5, #dave_ids)
    local function listed(token)
      local status, body = host:request("GET", "/api/tasks?limit=50", { token = token })
      assert.are.equal(200, status)
      local list = {}
      for i, t in ipairs(body.items) do list[i] = t.id end
      table.sort(list)
      return list
    end
    table.sort(carol_ids)
    table.sort(dave_ids)
    assert.are.same(carol_ids, listed(carol))
    assert.are.same(dave_ids, listed(dave))
  end)

  it("completes and reopens shared tasks from concurrent batches without a deadlock", function()
    -- Two workers' batches over the same tasks, in random orders: rows locked in id order
    -- cannot deadlock (before, PostgreSQL broke a cycle within about a second and the
    -- batch fell back to one transaction per item).
    local two = h.start({ bundles = { "services/api" }, workers = 2 }) -- batches of two processes
    finally(function() two:stop() end)
    local user = uid("gina")
    local token = h.token(user)
    local ids = create_tasks(two, token, 6, "shared")
    local log_before = #two:log()
    for _ = 1, 30 do
      local reqs = {}
      for _ = 1, 64 do
        local action = math.random(2) == 1 and "complete" or "reopen"
        reqs[#reqs + 1] = { method = "POST", path = "/api/tasks/" .. ids[math.random(#ids)] .. "/" .. action,
                            token = token }
      end
      for _, r in ipairs(burst(two.port, reqs)) do assert.are.equal(200, r.status) end
    end
    local failed = two:log():sub(log_before + 1):match('[^\n]*coalesced complete/reopen failed[^\n]*')
    assert.is_nil(failed, failed)
    -- every change has its event, none twice: versions and events agree
    for _, id in ipairs(ids) do
      local _, t = two:request("GET", "/api/tasks/" .. id, { token = token })
      assert.are.equal(t.version - 1, count(two.database_url, "SELECT count(*) FROM bus_outbox WHERE topic = "
        .. "'task-events' AND event->>'subject' = '" .. id .. "' AND event->>'type' <> 'task.created'"))
    end
  end)

  it("completes a task once when its owner and another user complete it concurrently", function()
    local erin, frank = h.token(uid("erin")), h.token(uid("frank"))
    local status, task = host:request("POST", "/api/tasks", { token = erin, body = { title = "race" } })
    assert.are.equal(201, status)
    local reqs = {}
    for _ = 1, 5 do
      reqs[#reqs + 1] = { method = "POST", path = "/api/tasks/" .. task.id .. "/complete", token = erin }
      reqs[#reqs + 1] = { method = "POST", path = "/api/tasks/" .. task.id .. "/complete", token = frank }
    end
    local res = burst(host.port, reqs)
    for i = 1, #reqs, 2 do
      assert.are.equal(200, res[i].status)
      assert.are.equal(true, res[i].body.completed)
      assert.are.equal(2, res[i].body.version)
      assert.are.equal(404, res[i + 1].status)
    end
    local _, now = host:request("GET", "/api/tasks/" .. task.id, { token = erin })
    assert.are.equal(2, now.version)
    assert.are.equal(1, count(host.database_url, "SELECT count(*) FROM bus_outbox WHERE topic = 'task-events'"
      .. " AND event->>'type' = 'task.completed' AND event->>'subject' = '" .. task.id .. "'"))
  end)
end)


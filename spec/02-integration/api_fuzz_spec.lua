-- Task API under random input (seeded, so a failure can be replayed): every route, odd
-- methods, paths, query strings, headers and bodies, sent with one user's token.
-- Asserts what the issue promises for any input: never a 5xx or a dropped connection;
-- every 4xx is the one JSON error shape (401 with WWW-Authenticate); a request answered
-- with an error leaves the sender's tasks and events exactly as they were (no partial
-- write); and the other user's tasks, events and history never change, though their ids
-- are in the paths and bodies. Then two users' requests sent together (so that the host
-- coalesces them into shared statements): each gets only its own tasks, and neither
-- user's rows or events take anything of the other's. FUZZ_SEED and FUZZ_REQUESTS
-- override the defaults.
local h = require "spec.helpers"
local json = require "json"

local SEED = tonumber(os.getenv("FUZZ_SEED")) or 20261202
local REQUESTS = tonumber(os.getenv("FUZZ_REQUESTS")) or 2500

local uid = h.uid

-- A deterministic generator (math.random is shared with the rest of the suite).
local function generator(seed)
  local x = seed % 2147483647
  if x <= 0 then x = x + 2147483646 end
  local g = {}
  function g.int(n) -- 1 .. n
    x = (x * 48271) % 2147483647
    return x % n + 1
  end
  function g.pick(t) return t[g.int(#t)] end
  function g.chance(p) return g.int(1000) <= p * 1000 end
  return g
end

local WEIRD_STRINGS = {
  "", " ", "ok", "  padded  ", "'; DROP TABLE tasks; --", "Robert'); DELETE FROM tasks WHERE ('1'='1",
  string.rep("x", 200), string.rep("x", 201), string.rep("x", 4001), string.rep("é", 200), string.rep("😀", 201),
  "日本語のタスク", "<script>alert(1)</script>", "NULL", "null", "\\", '"', "%00", "a,b", "{a}", "\t\n",
  string.rep("t", 33), "UPPER", "Work",
}
local NUMBERS = { 0, -1, 1, 2, 3, 4, 200, 201, 1.5, 2 ^ 53, math.maxinteger, math.mininteger, 1e308, -1e308 }
local TIMES = {
  "2026-12-02T10:00:00Z", "2026-12-02T10:00:00+05:30", "2026-12-02T10:00:00+25:00", "2026-02-30T10:00:00Z",
  "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-12-02", "10:00", "14:00", "25:61", "yesterday",
  "2026-12-02T10:00:00.123456789Z", "2026-03-29T02:30:00+01:00",
}
local ZONES = { "Europe/Paris", "Mars/Base", "UTC", "../../etc/passwd", "America/New_York", "", "Etc/GMT+5",
  "Asia/Kolkata" }
local PRIORITIES = { "none", "low", "medium", "high", "HIGH", "urgent", 2 }
local STRUCTURES = {
  { rule = "FREQ=DAILY;COUNT=3" }, { rule = "FREQ=WEEKLY;BYDAY=MO,WE" }, { rule = "FREQ=SECONDLY" },
  { rule = "FREQ=YEARLY;INTERVAL=0" }, { rule = "garbage" }, { freq = "daily" },
  { { before_minutes = 10 } }, { { before_minutes = -10 } }, { { at = "2026-12-02T09:00:00Z" } }, {},
}
local FIELDS = { "title", "description", "completed", "priority", "tags", "due_at", "tz", "recurrence",
  "reminders", "id", "version", "user_id", "created_at", "action", "ids", "filter", "fields", "time",
  "shift_minutes", "x", "" }
local QUERY_KEYS = { "status", "priority", "tag", "tags_mode", "due_before", "due_after", "overdue", "q",
  "sort", "order", "limit", "cursor", "x", "rule", "tz", "from", "count" }
local QUERY_VALUES = { "all", "pending", "completed", "high", "low,medium", "work", "any", "true", "false",
  "due", "title", "priority", "asc", "desc", "0", "-1", "201", "20", "1e3", "99999999999999999999",
  "2026-12-02T10:00:00Z", "bad", "", "%25", "%27--", "%C3%A9", "%FF", "%00", "eyJ4IjoxfQ", "Europe%2FParis",
  "FREQ%3DDAILY", "FREQ%3DWEEKLY%3BBYDAY%3DMO%3BCOUNT%3D2" }
local RAW_BODIES = {
  "", "{", "[]", "null", "\255\254", '{"title":"a\195"}', string.rep("[", 3000) .. string.rep("]", 3000),
  '{"title":"x","title":"y"}', '{"title":"\\ud800"}', '{"title":1e99999}', '"str"', '{"title":"ok"}\0',
  '{"title":"nul \\u0000"}', '{"title":"ok"} trailing', '{"action":"delete","ids":"*"}',
}

local function value(g, depth)
  local k = g.int(9)
  if k == 1 then return g.pick(WEIRD_STRINGS) end
  if k == 2 then return g.pick(NUMBERS) end
  if k == 3 then return g.pick({ true, false, json.null }) end
  if k == 4 and depth < 3 then
    local t = {}
    for i = 1, g.int(4) - 1 do t[i] = value(g, depth + 1) end
    return json.array(t)
  end
  if k == 5 and depth < 3 then
    local t = {}
    for _ = 1, g.int(4) - 1 do t[g.pick(FIELDS)] = value(g, depth + 1) end
    return t
  end
  if k == 6 then return g.pick(TIMES) end
  if k == 7 then return g.pick(ZONES) end
  if k == 8 then return g.pick(PRIORITIES) end
  return g.pick(STRUCTURES)
end

describe("Task API under random input", function()
  local host, alice, bob, alice_tok, bob_tok
  local alice_ids, bob_ids, bob_history = {}, {}, {}

  local db
  local function psql(sql) return db.query(sql) end
  -- Everything a user's requests may change: their task rows and their events.
  local function state_of(user)
    return psql([[SELECT (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM tasks t
      WHERE t.user_id = ']] .. user .. [[') || ' ' ||
      (SELECT count(*) FROM bus_outbox WHERE key = ']] .. user .. [[')]])
  end
  local function history_of(user)
    return psql([[SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x.id), '')) FROM task_history x
      WHERE x.user_id = ']] .. user .. [[']])
  end

  lazy_setup(function()
    host = h.start({ bundles = { "services/api" } })
    db = h.psql_session(host.database_url)
    alice, bob = uid("fuzz-alice"), uid("fuzz-bob")
    alice_tok, bob_tok = h.token(alice), h.token(bob)
    local seed_tasks = {
      { title = "Morning standup", tags = { "work" }, due_at = "2026-12-03T09:00:00+01:00", tz = "Europe/Paris",
        priority = "high" },
      { title = "Water plants", recurrence = { rule = "FREQ=DAILY" }, due_at = "2026-12-03T08:00:00Z", tz = "UTC" },
      { title = "Call the bank", description = "about the card", reminders = { { before = "PT15M" } },
        due_at = "2026-12-04T14:00:00Z" },
      { title = "Done already", completed = true, tags = { "home", "errand" } },
    }
    for _, body in ipairs(seed_tasks) do
      for _, who in ipairs({ { alice_tok, alice_ids }, { bob_tok, bob_ids } }) do
        local status, task = host:request("POST", "/api/tasks", { token = who[1], body = body })
        assert.are.equal(201, status)
        who[2][#who[2] + 1] = task.id
      end
    end
    h.eventually(function()
      return tonumber(psql("SELECT count(*) FROM task_history WHERE user_id = '" .. bob .. "'")) == #seed_tasks
    end, 10)
    for id in psql("SELECT id FROM task_history WHERE user_id = '" .. bob .. "'"):gmatch("%d+") do
      bob_history[#bob_history + 1] = id
    end
  end)

  lazy_teardown(function()
    if db then db.close() end
    if host then host:stop() end
  end)

  it("gives no 5xx, one error shape, no partial write and nothing of the other user's (seed " .. SEED .. ")",
    function()
      local g = generator(SEED)
      local bob_before, bob_history_before = state_of(bob), history_of(bob)
      local alice_state = state_of(alice)
      local counts, writes_refused, writes_done = {}, 0, 0

      local function task_id()
        if g.chance(0.6) then return alice_ids[#alice_ids - g.int(math.min(#alice_ids, 20)) + 1] end
        return g.pick({ g.pick(alice_ids), g.pick(bob_ids), g.pick(bob_ids), "00000000-0000-0000-0000-000000000000",
          "not-a-uuid", "%00", "..", string.rep("A", 300), string.upper(g.pick(bob_ids)) })
      end
      local function route()
        local id = task_id()
        local r = g.int(16)
        if r <= 3 then return "/api/tasks", { "GET", "POST" } end
        if r == 4 then return "/api/tasks/" .. id, { "GET", "PATCH", "PATCH", "DELETE" } end
        if r == 5 then return "/api/tasks/" .. id .. "/complete", { "POST" } end
        if r == 6 then return "/api/tasks/" .. id .. "/reopen", { "POST" } end
        if r <= 8 then return "/api/tasks/bulk", { "POST" } end
        if r == 9 then return "/api/tags", { "GET" } end
        if r == 10 then return "/api/tasks/" .. id .. "/history", { "GET" } end
        if r == 11 then return "/api/activity", { "GET" } end
        if r == 12 then
          local entry = g.pick({ g.pick(bob_history), "0", "-1", "x", "99999999999999999999" })
          return "/api/activity/" .. entry .. "/undo", { "POST" }
        end
        if r == 13 then return "/api/recurrence/preview", { "GET" } end
        if r == 14 then
          return g.pick({ "/api/tasks/", "/api//tasks", "/api/tasks/" .. id .. "/x", "/api" }), { "GET", "POST" }
        end
        return "/api/tasks/" .. id, { "PATCH", "PATCH", "PATCH", "DELETE" }
      end
      local function query()
        local parts = {}
        for i = 1, g.int(5) - 1 do parts[i] = g.pick(QUERY_KEYS) .. "=" .. g.pick(QUERY_VALUES) end
        return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
      end
      -- A valid body for the route (so that writes get through), then mostly one or two
      -- mutations: a field with an odd value, an unknown field, or odd bytes for the body.
      local function task_fields(create)
        local b = {}
        if create or g.chance(0.4) then b.title = "fuzz task " .. g.int(1000) end
        if g.chance(0.3) then b.description = g.pick({ "notes", "", "x\ny" }) end
        if g.chance(0.4) then b.priority = g.pick({ "none", "low", "medium", "high" }) end
        if g.chance(0.4) then b.tags = json.array({ g.pick({ "work", "home", "Errand" }), "fuzz" }) end
        if g.chance(0.4) then b.due_at = g.pick({ "2026-12-05T09:00:00Z", "2027-01-01T08:30:00+01:00" }) end
        if g.chance(0.3) then b.tz = g.pick({ "Europe/Paris", "America/New_York", "UTC" }) end
        if g.chance(0.2) then b.completed = g.chance(0.5) end
        if g.chance(0.1) then b.reminders = json.array({ { at = "2026-12-05T08:45:00Z" } }) end
        if g.chance(0.1) then
          b.due_at = b.due_at or "2026-12-05T09:00:00Z"
          b.recurrence = { rule = g.pick({ "FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=MONTHLY;COUNT=3" }) }
        end
        return b
      end
      local function bulk_body()
        local b = { action = g.pick({ "complete", "reopen", "delete", "update", "reschedule" }) }
        if g.chance(0.8) then
          b.ids = json.array({ task_id(), task_id() })
        else
          b.filter = { status = g.pick({ "pending", "completed", "all" }), tag = g.pick({ "work", "home" }) }
        end
        if b.action == "update" then b.changes = task_fields(false) end
        if b.action == "reschedule" then
          if g.chance(0.5) then b.time = g.pick({ "14:00", "07:30" }) end
          if not b.time or g.chance(0.3) then b.shift = { days = g.int(3) - 2, hours = g.int(5) - 1 } end
        end
        return b
      end
      local function body(path)
        if g.chance(0.08) then return g.pick(RAW_BODIES) end
        local b
        if path:find("/bulk", 1, true) then b = bulk_body() else b = task_fields(path == "/api/tasks") end
        for _ = 1, g.chance(0.6) and 0 or g.int(2) do
          local target = b
          if type(b.changes) == "table" and g.chance(0.5) then target = b.changes end
          if type(b.filter) == "table" and g.chance(0.5) then target = b.filter end
          target[g.pick(FIELDS)] = value(g, 1)
        end
        return json.encode(b)
      end

      for n = 1, REQUESTS do
        local path, methods = route()
        local method = g.chance(0.9) and g.pick(methods) or g.pick({ "PUT", "OPTIONS", "POST", "GET", "DELETE" })
        local base = path
        if method == "GET" or g.chance(0.2) then path = path .. query() end
        local headers = {}
        local token = alice_tok
        if g.chance(0.03) then
          token = nil
          headers.Authorization = g.pick({ "Bearer", "Bearer x.y.z", "Basic YTpi",
            "Bearer " .. alice_tok:sub(1, -4) .. "abc", "Bearer " .. bob_tok:sub(1, 20) })
        end
        if g.chance(0.95) then
          headers["Content-Type"] = g.chance(0.92) and g.pick({ "application/json", "application/json; charset=utf-8" })
            or g.pick({ "text/plain", "application/x-www-form-urlencoded", "APPLICATION/JSON", "application/jsonx" })
        end
        if g.chance(0.1) then
          headers["If-Match"] = g.pick({ '"1"', '"2"', "*", 'W/"1"', "garbage", '"1", "2"',
            '"99999999999999999999"', "" })
        end
        local wants_body = (method == "POST" and not base:find("/complete$") and not base:find("/reopen$")
          and not base:find("/undo$")) or method == "PATCH" or method == "PUT"
        local sent = (wants_body or g.chance(0.08)) and body(base) or nil
        local what = string.format("request %d (seed %d): %s %s %s", n, SEED, method, path,
          sent and ("body " .. sent:sub(1, 200)) or "")

        local status, decoded, rheaders = host:request(method, path, { token = token, headers = headers, body = sent })
        assert.is_number(status, what .. ": no answer (" .. tostring(decoded) .. ")")
        counts[status] = (counts[status] or 0) + 1
        assert.is_true(status < 500, what .. ": " .. status .. " " .. tostring(rheaders and json.encode(decoded)))
        if status == 201 and base == "/api/tasks" then alice_ids[#alice_ids + 1] = decoded.id end
        if status >= 400 then
          assert.is_table(decoded, what .. ": the error is not JSON")
          local e = decoded.error
          assert.is_table(e, what .. ": no error object")
          assert.is_string(e.code, what)
          assert.is_string(e.message, what)
          assert.is_true(e.field == nil or type(e.field) == "string", what)
          if status == 401 then assert.is_string(rheaders["www-authenticate"], what) end
        end
        if method ~= "GET" and method ~= "OPTIONS" then
          local now = state_of(alice)
          if status >= 400 then
            assert.are.equal(alice_state, now, what .. ": answered " .. status .. " but changed the user's data")
            writes_refused = writes_refused + 1
          elseif now ~= alice_state then
            writes_done = writes_done + 1
          end
          alice_state = now
        end
      end

      assert.are.equal(bob_before, state_of(bob), "the other user's tasks or events changed")
      assert.are.equal(bob_history_before, history_of(bob), "the other user's history changed")
      assert.are.equal(200, (host:request("GET", "/healthz")))
      -- The run exercised both sides: successes and the main kinds of refusal.
      local seen = {}
      for code, c in pairs(counts) do seen[#seen + 1] = code .. "=" .. c end
      table.sort(seen)
      for _, code in ipairs({ 200, 201, 400, 401, 404, 405, 415, 422 }) do
        assert.is_true((counts[code] or 0) > 0,
          "no " .. code .. " in " .. REQUESTS .. " requests: " .. table.concat(seen, " "))
      end
      assert.is_true(writes_refused > 400, "only " .. writes_refused .. " refused writes checked")
      assert.is_true(writes_done > 150, "only " .. writes_done .. " writes went through")
      assert.is_nil(host:log():find("stack traceback", 1, true), "a Lua error in the host's log")
    end)

  -- Requests sent together reach the host in the same loop turn, where task reads,
  -- creations and complete / reopen of different users share one statement
  -- (tasks.coalesce): the answers must still be each sender's own.
  it("keeps two users apart when their requests are coalesced together (seed " .. SEED .. ")", function()
    local g = generator(SEED + 1)
    local users = {}
    for _, name in ipairs({ "alice", "bob" }) do
      local u = { name = uid("batch-" .. name), ids = {} }
      u.token = h.token(u.name)
      for i = 1, 8 do
        local status, task = host:request("POST", "/api/tasks",
          { token = u.token, body = { title = name .. " " .. i } })
        assert.are.equal(201, status)
        u.ids[#u.ids + 1] = task.id
      end
      users[#users + 1] = u
    end
    users[1].prefix, users[2].prefix = "alice", "bob"
    local function other(u) return u == users[1] and users[2] or users[1] end

    -- One request: its raw bytes and what the answer must be.
    local function make(u)
      local mine = g.chance(0.5)
      local id = g.pick(mine and u.ids or other(u).ids)
      local k = g.int(6)
      local method, path, body
      if k == 1 then method, path = "GET", "/api/tasks/" .. id
      elseif k == 2 then method, path = "POST", "/api/tasks/" .. id .. "/complete"
      elseif k == 3 then method, path = "POST", "/api/tasks/" .. id .. "/reopen"
      elseif k == 4 then
        method, path, body = "PATCH", "/api/tasks/" .. id, json.encode({ title = u.prefix .. " edited" })
      elseif k == 5 and g.chance(0.3) then
        method, path = "DELETE", "/api/tasks/" .. id
      else
        method, path, body, mine, id = "POST", "/api/tasks", json.encode({ title = u.prefix .. " new" }), true, nil
      end
      local raw = method .. " " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
        .. u.token .. "\r\n"
      if body then raw = raw .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
      else raw = raw .. "\r\n" end
      return { raw = raw, user = u, mine = mine, id = id, what = u.prefix .. ": " .. method .. " " .. path }
    end

    local crossed, own_ok = 0, 0
    for _ = 1, 25 do
      local batch, raws = {}, {}
      for i = 1, 32 do
        batch[i] = make(g.chance(0.5) and users[1] or users[2])
        raws[i] = batch[i].raw
      end
      local answers = h.send_together(host.port, raws)
      for i, r in ipairs(batch) do
        local status, raw = answers[i].status, answers[i].body
        assert.is_number(status, r.what .. ": no answer")
        if not r.mine then
          assert.are.equal(404, status, r.what .. " (another user's task): " .. tostring(raw))
          crossed = crossed + 1
        else
          assert.is_true(status == 200 or status == 201 or status == 204 or status == 404,
            r.what .. ": " .. status .. " " .. tostring(raw))
          if status == 200 or status == 201 then
            local task = json.decode(raw)
            assert.are.equal(r.user.prefix, task.title:match("^%a+"), r.what .. ": another user's task came back")
            if r.id then assert.are.equal(r.id, task.id, r.what) end
            if status == 201 then r.user.ids[#r.user.ids + 1] = task.id end
            own_ok = own_ok + 1
          end
        end
      end
    end
    assert.is_true(crossed > 200 and own_ok > 200, crossed .. " cross-user and " .. own_ok .. " own requests")
    -- The two users' writes did share transactions (rows written by one transaction share
    -- its xmin), so the above checked coalesced batches, not requests one by one.
    local shared = psql("SELECT count(*) FROM (SELECT xmin::text FROM tasks WHERE user_id IN ('" .. users[1].name
      .. "', '" .. users[2].name .. "') GROUP BY 1 HAVING count(DISTINCT user_id) = 2) x")
    assert.is_true(tonumber(shared) > 0, "no transaction wrote both users' tasks")
    -- Nothing of one user's changed through the other's requests, nor was published for
    -- the other: every task keeps its owner's titles; every event names its key's user.
    for _, u in ipairs(users) do
      local foreign = psql("SELECT count(*) FROM tasks WHERE user_id = '" .. u.name .. "' AND title NOT LIKE '"
        .. u.prefix .. " %'")
      assert.are.equal("0", foreign, u.prefix .. "'s tasks carry the other user's titles")
      local stray = psql("SELECT count(*) FROM bus_outbox WHERE key = '" .. u.name .. "' AND ("
        .. "event->'data'->>'user_id' <> '" .. u.name .. "' OR event->'data'->'task_data'->>'title' NOT LIKE '"
        .. u.prefix .. " %')")
      assert.are.equal("0", stray, u.prefix .. "'s events carry the other user's data")
    end
    assert.is_nil(host:log():find("stack traceback", 1, true), "a Lua error in the host's log")
  end)
end)

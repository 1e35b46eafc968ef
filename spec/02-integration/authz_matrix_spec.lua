-- The authorization matrix (issue 19, "Authorization"): every REST route of the bundles'
-- manifests, every chat tool (through POST /api/chat and directly through MCP tools/call)
-- and the WebSocket handshake and resume, as the owner, as another user, anonymous,
-- with an expired token, with a token for another audience or issuer. Another user's ids
-- in paths, bodies, filters, cursors and chat text answer "not found" (or an empty view)
-- and change nothing: the owner's rows, history, events and conversations are compared
-- in the database before and after. Read-only fields in create and update bodies are
-- refused with 422 read_only_field (docs/api.md); a bulk action naming another user's
-- id answers 404 naming that id and changes nothing (all or nothing, docs/api.md).
-- A route a manifest declares without a case here fails the spec.
local h = require "spec.helpers"
local json = require "json"
local wsc = require "spec.support.wsclient"

local ISS, AUD = "https://auth.spec.example", "todo-api"
-- secrets the host is given, none of which may ever appear in its log
local DB_PASSWORD = "authz-db-password-Xq81"  -- the spec cluster trusts local connections: unused
local CURSOR_SECRET = "authz-cursor-secret-7Yw2"
local minted = {} -- every token this spec sent
local function tok(sub, claims)
  local c = { iss = ISS, aud = AUD }
  for k, v in pairs(claims or {}) do c[k] = v end
  local t = h.token(sub, c)
  minted[#minted + 1] = t
  return t
end

local A, B = "authz-alice", "authz-bob"
local now = os.time()
-- every identity that is not a user of this API
local STRANGERS = {
  anonymous = function() return nil end,
  expired = function() return tok(A, { exp = now - 3600, iat = now - 7200 }) end,
  other_audience = function() return tok(A, { aud = "another-api" }) end,
  other_issuer = function() return tok(A, { iss = "https://evil.example" }) end,
  bad_signature = function() return tok(A, { secret = "not-the-dev-secret" }) end,
}

--- Routes of every bundle's manifest ("METHOD /path/:id"), read from the files of
-- services/*/service.lua: `route("GET", "/p", ...)`, `{ method = "GET", path = "/p" }`
-- and a `websocket = { path = "/p" }` endpoint.
local function manifest_routes()
  local routes, files = {}, h.sh("ls services/*/service.lua")
  for file in files:gmatch("%S+") do
    local f = assert(io.open(file))
    local src = f:read("a")
    f:close()
    for m, p in src:gmatch('route%("(%u+)",%s*"([^"]+)"') do routes[#routes + 1] = m .. " " .. p end
    for m, p in src:gmatch('method%s*=%s*"(%u+)",%s*path%s*=%s*"([^"]+)"') do routes[#routes + 1] = m .. " " .. p end
    for p in src:gmatch('websocket%s*=%s*{%s*path%s*=%s*"([^"]+)"') do routes[#routes + 1] = "GET " .. p end
  end
  return routes
end

--- Routes of spec/contracts/openapi.yaml ("METHOD /path/:id").
local function openapi_routes()
  local routes, path = {}, nil
  for line in io.lines("spec/contracts/openapi.yaml") do
    local p = line:match("^  (/[^:]*):%s*$")
    if p then path = p:gsub("{(%w+)}", ":%1") end
    local m = line:match("^    (%l+):%s*$")
    if path and m and ({ get = 1, post = 1, put = 1, patch = 1, delete = 1 })[m] then
      routes[#routes + 1] = m:upper() .. " " .. path
    end
    if line:match("^%S") and not line:match("^paths:") then path = nil end
  end
  return routes
end

describe("authorization matrix", function()
  local host, db
  local fx = {} -- alice's resources: task, done (a completed task), activity, conversation, cursor

  local function req(method, path, token, body, headers)
    return host:request(method, path, { token = token, body = body, headers = headers })
  end

  local function q(sql) return db.query(sql) end

  --- Everything of `user` in the database, as one string: tasks, history, outbox events,
  -- WebSocket log and conversations.
  local function snapshot(user)
    local u = "'" .. user .. "'"
    return table.concat({
      q("select coalesce(json_agg(t order by t.id)::text, '[]') from tasks t where user_id = " .. u),
      q("select count(*) || ':' || coalesce(max(id), 0) from task_history where user_id = " .. u),
      q("select count(*) from bus_outbox where event::text like '%' || " .. u .. " || '%'"),
      q("select count(*) from ws_events where user_id = " .. u),
      q("select coalesce(json_agg(c order by c.id)::text, '[]') from chat_conversations c where user_id = " .. u),
      q("select count(*) from chat_messages m join chat_conversations c on c.id = m.conversation_id"
        .. " where c.user_id = " .. u),
      q("select coalesce(json_agg(n order by n.id)::text, '[]') from notifications n where user_id = " .. u),
      q("select coalesce(json_agg(r order by r.id)::text, '[]') from reminder_schedule r where user_id = " .. u),
      q("select coalesce(json_agg(c)::text, '[]') from notification_channels c where user_id = " .. u),
      q("select count(*) from notification_deliveries where user_id = " .. u),
    }, "\n")
  end

  local function create(user, body)
    local s, t = req("POST", "/api/tasks", tok(user), body)
    assert.are.equal(201, s, json.encode(t))
    return t
  end

  lazy_setup(function()
    local url = h.new_database()
    local with_password = url:gsub("^(postgresql://[^:@/]+)@", "%1:" .. DB_PASSWORD .. "@")
    assert(with_password ~= url, "unexpected database URL shape: " .. url)
    host = h.start { bundles = { "services/api", "services/chat", "services/websocket", "services/notification" },
      database_url = with_password, env = { AUTH_ISSUER = ISS, AUTH_AUDIENCE = AUD,
        API_CURSOR_SECRET = CURSOR_SECRET, LOG_LEVEL = "debug" } }
    db = h.psql_session(host.database_url)
    fx.task = create(A, { title = "alpha secret groceries", tags = { "alphatag" },
      due_at = "2030-01-02T09:00:00Z" })
    fx.other = create(A, { title = "alpha secret dentist" })
    fx.done = create(A, { title = "alpha secret done" })
    assert.are.equal(200, (req("POST", "/api/tasks/" .. fx.done.id .. "/complete", tok(A))))
    local s, page = req("GET", "/api/tasks?limit=1&sort=created", tok(A))
    assert.are.equal(200, s)
    fx.cursor = assert(page.next_cursor)
    fx.activity = assert(h.eventually(function() -- the history consumer records it
      local _, act = req("GET", "/api/activity", tok(A))
      return act.items[1] and act.items[1].id
    end, 10), "alice has no activity")
    local chat
    s, chat = req("POST", "/api/chat", tok(A), { message = "add alpha secret call mom" })
    assert.are.equal(200, s, json.encode(chat))
    fx.conversation = chat.conversation_id
    -- two reminders that fire now: two notifications of alice's, then her webhook (set after
    -- they fired: no delivery is attempted to it)
    local soon = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 2)
    fx.reminded = create(A, { title = "alpha secret reminder", due_at = "2030-01-01T09:00:00Z",
      reminders = { { at = soon }, { at = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 3) } } })
    local notes = h.eventually(function()
      local _, b = req("GET", "/api/notifications", tok(A))
      return #b.items >= 2 and b.items
    end, 15)
    assert.is_truthy(notes, "alice's reminders did not fire")
    fx.notification = notes[1].id
    local page2
    s, page2 = req("GET", "/api/notifications?limit=1", tok(A))
    assert.are.equal(200, s)
    fx.notification_cursor = assert(page2.next_cursor)
    local settings
    s, settings = req("PUT", "/api/notification-settings", tok(A),
      { webhook_url = "https://alpha-secret-hook.example.com/alice" })
    assert.are.equal(201, s, json.encode(settings))
    fx.webhook_secret = assert(settings.webhook_secret)
    -- bob has a task of his own, for the mixed-ownership cases
    fx.bobs = create(B, { title = "bob's own" })
    -- the task events reach ws_events through the bus: wait until the log holds them
    assert.is_truthy(h.eventually(function()
      return tonumber(q("select count(*) from ws_events where user_id = '" .. A .. "'")) >= 5
    end, 10), "alice's events did not reach the websocket log")
  end)

  lazy_teardown(function()
    if db then db.close() end
    if host then host:stop() end
  end)

  --- Run `fn` (bob's attempts) and assert alice's database state is exactly as before.
  local function settled()
    -- every consumer group of task-events (history, the reminder schedule) has caught up
    return q("select count(*) from bus_outbox o, (values ('history'), ('notification')) g(grp)"
      .. " where o.topic = 'task-events' and o.seq > coalesce((select seq from bus_cursors c"
      .. " where c.grp = g.grp and c.topic = o.topic and c.part = o.part), 0)") == "0"
  end

  --- The snapshot once the history consumer has caught up (it writes task_history later).
  local function settled_snapshot(user)
    assert.is_truthy(h.eventually(settled, 10), "the history consumer did not catch up")
    return snapshot(user)
  end

  local function unchanged_for_alice(fn)
    local before = settled_snapshot(A)
    fn()
    h.sleep(0.3) -- let any event that was (wrongly) published land
    assert.are.equal(before, settled_snapshot(A))
  end

  local function refuses_404(what, s, b)
    assert.are.equal(404, s, what .. ": " .. json.encode(b))
    assert.are.equal("not_found", b.error.code, what)
  end

  --- Assert that an answer to bob holds nothing of alice's: no title, no tag, no id
  -- (unless bob named the ids himself: `echo_ok`, an error message may quote them).
  local function leaks_nothing(raw, what, echo_ok)
    for _, k in ipairs { "task", "other", "done", "reminded" } do
      assert.is_nil(raw:find(fx[k].title, 1, true), what .. " leaked alice's title: " .. raw)
      if not echo_ok then
        assert.is_nil(raw:find(fx[k].id, 1, true), what .. " leaked an id of alice: " .. raw)
      end
    end
    assert.is_nil(raw:find("alphatag", 1, true), what .. " leaked alice's tag: " .. raw)
    assert.is_nil(raw:find("alpha-secret-hook", 1, true), what .. " leaked alice's webhook: " .. raw)
    if fx.notification and not echo_ok then
      assert.is_nil(raw:find(fx.notification, 1, true), what .. " leaked alice's notification: " .. raw)
    end
  end

  local function id_path(p, id) return (p:gsub(":id", id)) end

  -- One case per route: `owner` (alice's request and the statuses it must get), `other`
  -- (bob's attempt at alice's data and its assertions). Strangers are checked for all.
  local T = "/api/tasks/:id"
  local CASES = {
    ["POST /api/tasks"] = {
      owner = function() return { body = { title = "alpha secret fresh" } }, 201 end,
      other = function(p)
        local s, t = req("POST", p, tok(B), { title = "bob fresh" })
        assert.are.equal(201, s)
        assert.are.equal(B, q("select user_id from tasks where id = '" .. t.id .. "'"))
      end,
    },
    ["GET /api/tasks"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        for _, query in ipairs { "", "?q=alpha", "?tag=alphatag", "?status=all", "?status=completed" } do
          local s, b, _, raw = req("GET", p .. query, tok(B))
          assert.are.equal(200, s, query)
          for _, t in ipairs(b.items) do
            assert.are.equal(B, q("select user_id from tasks where id = '" .. t.id .. "'"), query)
          end
          leaks_nothing(raw, "GET /api/tasks" .. query)
        end
        -- a cursor alice got is not valid for bob
        local s, b = req("GET", p .. "?limit=1&sort=created&cursor=" .. fx.cursor, tok(B))
        assert.are.equal(422, s, json.encode(b))
        assert.are.equal("invalid_cursor", b.error.code)
      end,
    },
    ["POST /api/tasks/bulk"] = {
      owner = function() return { body = { action = "complete", ids = { fx.other.id } } }, 200 end,
      other = function(p)
        local ACTIONS = { complete = {}, reopen = {}, delete = {},
          update = { changes = { title = "owned by bob" } }, reschedule = { time = "14:00" } }
        for action, extra in pairs(ACTIONS) do
          -- alice's id alone, and mixed with bob's own: 404 naming alice's id, nothing changes
          for _, ids in ipairs { { fx.task.id }, { fx.bobs.id, fx.task.id } } do
            local bobs_before = settled_snapshot(B)
            local body = { action = action, ids = ids }
            for k, v in pairs(extra) do body[k] = v end
            local s, b = req("POST", p, tok(B), body)
            refuses_404("bulk " .. action, s, b)
            assert.is_truthy(b.error.message:find(fx.task.id, 1, true), b.error.message)
            assert.are.equal(bobs_before, settled_snapshot(B))
          end
        end
        -- a filter acts only on bob's tasks
        local s, b, _, raw = req("POST", p, tok(B), { action = "complete", all = true })
        assert.are.equal(200, s, raw)
        assert.is_true(b.matched >= 1, raw)
        for _, t in ipairs(b.items) do
          assert.are.equal(B, q("select user_id from tasks where id = '" .. t.id .. "'"))
        end
        leaks_nothing(raw, "bulk all")
        -- alice's words in bob's filter match nothing
        s, b, _, raw = req("POST", p, tok(B), { action = "delete", filter = { q = "alpha secret" } })
        assert.are.equal(200, s, raw)
        assert.are.same({ 0, 0 }, { b.matched, b.changed })
        leaks_nothing(raw, "bulk filter")
      end,
    },
    ["GET " .. T] = {
      owner = function(p) return { path = id_path(p, fx.task.id) }, 200 end,
      other = function(p) refuses_404("other user", req("GET", id_path(p, fx.task.id), tok(B))) end,
    },
    ["PATCH " .. T] = {
      owner = function(p) return { path = id_path(p, fx.task.id), body = { priority = "high" } }, 200 end,
      other = function(p)
        refuses_404("PATCH", req("PATCH", id_path(p, fx.task.id), tok(B), { title = "owned by bob" }))
      end,
    },
    ["DELETE " .. T] = {
      owner = function(p) return { path = id_path(p, create(A, { title = "alpha secret to delete" }).id) }, 204 end,
      other = function(p)
        refuses_404("DELETE", req("DELETE", id_path(p, fx.task.id), tok(B)))
        refuses_404("DELETE series", req("DELETE", id_path(p, fx.task.id) .. "?scope=series", tok(B)))
      end,
    },
    ["POST " .. T .. "/complete"] = {
      owner = function(p) return { path = id_path(p, fx.task.id) }, 200 end,
      other = function(p) refuses_404("complete", req("POST", id_path(p, fx.task.id), tok(B))) end,
    },
    ["POST " .. T .. "/reopen"] = {
      owner = function(p) return { path = id_path(p, fx.done.id) }, 200 end,
      other = function(p) refuses_404("reopen", req("POST", id_path(p, fx.done.id), tok(B))) end,
    },
    ["GET /api/tags"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, _, _, raw = req("GET", p, tok(B))
        assert.are.equal(200, s)
        leaks_nothing(raw, "tags")
      end,
    },
    ["GET " .. T .. "/history"] = {
      owner = function(p) return { path = id_path(p, fx.task.id) }, 200 end,
      other = function(p) refuses_404("history", req("GET", id_path(p, fx.task.id), tok(B))) end,
    },
    ["GET /api/activity"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, b, _, raw = req("GET", p, tok(B))
        assert.are.equal(200, s)
        for _, e in ipairs(b.items) do assert.are_not.equal(fx.activity, e.id) end
        leaks_nothing(raw, "activity")
      end,
    },
    ["POST /api/activity/:id/undo"] = {
      owner = function(p)
        local t = create(A, { title = "alpha secret undo me" })
        local entry = h.eventually(function() -- the history consumer records it
          local _, act = req("GET", "/api/tasks/" .. t.id .. "/history", tok(A))
          return act.items[1]
        end, 10)
        return { path = id_path(p, tostring(assert(entry, "no history entry").id)) }, 200
      end,
      other = function(p) refuses_404("undo", req("POST", id_path(p, tostring(fx.activity)), tok(B))) end,
    },
    ["GET /api/recurrence/preview"] = {
      owner = function(p) return { path = p .. "?phrase=every+monday" }, 200 end,
      other = false, -- holds no user data
    },
    ["POST /api/chat"] = {
      owner = function() return { body = { message = "show my tasks" } }, 200 end,
      other = function(p)
        -- alice's conversation is not bob's
        refuses_404("chat in alice's conversation",
          req("POST", p, tok(B), { message = "show my tasks", conversation_id = fx.conversation }))
        -- alice's ids and titles in chat text reach nothing of hers, with every tool
        local texts = {
          "complete task " .. fx.task.id, "mark " .. fx.task.id .. " as done",
          "reopen " .. fx.done.id, "delete task " .. fx.task.id,
          "change task " .. fx.task.id .. " to 'owned by bob'", "make " .. fx.task.id .. " urgent",
          "tag " .. fx.task.id .. " bobtag", "move " .. fx.task.id .. " to friday at 2pm",
          "snooze the " .. fx.task.id .. " reminder for 10 minutes", "plan my day",
          "show me all my tasks", "find alpha secret", "complete alpha secret grocer",
          "delete all completed tasks", "yes", "add bob's chat task",
        }
        local conv
        for _, text in ipairs(texts) do
          local s, b, _, raw = req("POST", p, tok(B), { message = text, conversation_id = conv })
          assert.are.equal(200, s, text .. ": " .. raw)
          conv = b.conversation_id
          leaks_nothing(raw, "chat " .. text, true)
        end
      end,
    },
    ["GET /api/conversations"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, _, _, raw = req("GET", p, tok(B))
        assert.are.equal(200, s)
        assert.is_nil(raw:find(fx.conversation, 1, true), raw)
      end,
    },
    ["GET /api/conversations/:id/messages"] = {
      owner = function(p) return { path = id_path(p, fx.conversation) }, 200 end,
      other = function(p) refuses_404("messages", req("GET", id_path(p, fx.conversation), tok(B))) end,
    },
    ["DELETE /api/conversations/:id"] = {
      owner = function(p)
        local _, c = req("POST", "/api/chat", tok(A), { message = "plan my day" })
        return { path = id_path(p, c.conversation_id) }, 204
      end,
      other = function(p) refuses_404("delete conversation", req("DELETE", id_path(p, fx.conversation), tok(B))) end,
    },
    ["POST /api/parse"] = {
      owner = function() return { body = { text = "pay rent every 1st at 9am" } }, 200 end,
      other = false, -- holds no user data
    },
    ["POST /mcp"] = {
      owner = function() return { body = { jsonrpc = "2.0", id = 1, method = "tools/list" },
        headers = { Accept = "application/json, text/event-stream" } }, 200 end,
      other = false, -- the tools: below, one by one
    },
    ["GET /mcp"] = { owner = function() return {}, 405 end, other = false },
    ["DELETE /mcp"] = { owner = function() return {}, 405 end, other = false },
    ["GET /ws"] = { ws = true }, -- the handshake and resume: below
    ["GET /api/notifications"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        for _, query in ipairs { "", "?unread=true", "?unread=false", "?limit=200" } do
          local s, b, _, raw = req("GET", p .. query, tok(B))
          assert.are.equal(200, s, raw)
          assert.are.same({}, b.items)
          leaks_nothing(raw, "notifications" .. query)
        end
        local s, b = req("GET", p .. "?limit=1&cursor=" .. fx.notification_cursor, tok(B))
        assert.are.equal(422, s, json.encode(b))
        assert.are.equal("invalid_cursor", b.error.code)
      end,
    },
    ["GET /api/notifications/unread-count"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, b = req("GET", p, tok(B))
        assert.are.equal(200, s)
        assert.are.equal(0, b.unread)
      end,
    },
    ["POST /api/notifications/read-all"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, b = req("POST", p, tok(B))
        assert.are.equal(200, s, json.encode(b))
        assert.are.same({ 0, 0 }, { b.marked_read, b.unread })
      end,
    },
    ["POST /api/notifications/:id/read"] = {
      owner = function(p) return { path = id_path(p, fx.notification) }, 200 end,
      other = function(p) refuses_404("read notification", req("POST", id_path(p, fx.notification), tok(B))) end,
    },
    ["GET /api/notification-settings"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, b, _, raw = req("GET", p, tok(B))
        assert.are.equal(200, s)
        assert.are.equal(json.null, b.webhook_url)
        leaks_nothing(raw, "notification settings")
      end,
    },
    ["PUT /api/notification-settings"] = {
      owner = function()
        return { body = { webhook_url = "https://alpha-secret-hook.example.com/alice2" } }, 200
      end,
      other = function(p)
        local s, b, _, raw = req("PUT", p, tok(B), { webhook_url = "https://bob-hook.example.com/x" })
        assert.is_true(s == 200 or s == 201, raw)
        leaks_nothing(raw, "bob's settings")
        assert.are_not.equal(fx.webhook_secret, b.webhook_secret)
        s, _, raw = req("PUT", p, tok(B), { webhook_url = "https://bob-hook.example.com/x", user_id = A })
        assert.are.equal(422, s, raw)
        s, _, raw = req("PUT", p, tok(B), { webhook_url = json.null })
        assert.are.equal(200, s, raw)
      end,
    },
    ["GET /api/notification-settings/deliveries"] = {
      owner = function() return {}, 200 end,
      other = function(p)
        local s, b, _, raw = req("GET", p, tok(B))
        assert.are.equal(200, s, raw)
        assert.are.same({}, b.items)
        leaks_nothing(raw, "deliveries")
      end,
    },
    ["POST /api/tasks/:id/snooze"] = {
      owner = function(p) return { path = id_path(p, fx.reminded.id), body = { ["for"] = "PT10M" } }, 200 end,
      other = function(p)
        refuses_404("snooze", req("POST", id_path(p, fx.reminded.id), tok(B), { ["for"] = "PT10M" }))
      end,
    },
  }

  it("has a case for every route of the manifests and of the OpenAPI contract", function()
    local routes = manifest_routes()
    assert.is_true(#routes >= 20, "found only " .. #routes .. " routes in the manifests")
    for _, r in ipairs(routes) do assert.is_table(CASES[r], "no authorization case for " .. r) end
    for _, r in ipairs(openapi_routes()) do assert.is_table(CASES[r], "no authorization case for " .. r) end
  end)

  local ROUTES = {}
  for route, case in pairs(CASES) do if not case.ws then ROUTES[#ROUTES + 1] = route end end
  table.sort(ROUTES)

  -- Strangers and the other user first, while alice's data is as the setup made it (her
  -- notifications unread, her tasks pending); then the owner.
  for _, route in ipairs(ROUTES) do
    local case = CASES[route]
    local method, path = route:match("^(%u+) (.+)$")
    local sample = path:gsub(":id", "00000000-0000-4000-8000-000000000000")
    it(route .. ": refused (401) to every stranger", function()
      for name, make in pairs(STRANGERS) do
        local before = settled_snapshot(A)
        local s, b, headers = req(method, sample, make(), method ~= "GET" and method ~= "DELETE" and {} or nil)
        assert.are.equal(401, s, name)
        assert.are.equal("unauthorized", b.error.code, name)
        assert.matches('^Bearer realm="todo"', headers["www-authenticate"] or "", name)
        assert.are.equal(before, settled_snapshot(A), name)
      end
    end)
    if case.other then
      it(route .. ": another user reaches nothing of the owner's", function()
        unchanged_for_alice(function() case.other(path) end)
      end)
    end
  end

  for _, route in ipairs(ROUTES) do
    local case = CASES[route]
    local method, path = route:match("^(%u+) (.+)$")
    it(route .. ": served to the owner", function()
      local r, want = case.owner(path)
      local s, b = req(method, r.path or path, tok(A), r.body, r.headers)
      assert.are.equal(want, s, json.encode(b))
    end)
  end

  it("refuses read-only fields in create, update and bulk update bodies with 422 read_only_field", function()
    local target = create(A, { title = "alpha secret read-only" })
    local values = { user_id = B, version = 99, id = "11111111-1111-4111-8111-111111111111",
      created_at = "2000-01-01T00:00:00Z", completed_at = "2000-01-01T00:00:00Z",
      updated_at = "2000-01-01T00:00:00Z", series_id = "11111111-1111-4111-8111-111111111111" }
    unchanged_for_alice(function()
      for field, v in pairs(values) do
        local s, b = req("POST", "/api/tasks", tok(A), { title = "x", [field] = v })
        assert.are.equal(422, s, field)
        assert.are.same({ "read_only_field", field }, { b.error.code, b.error.field })
        s, b = req("PATCH", "/api/tasks/" .. target.id, tok(A), { title = "y", [field] = v })
        assert.are.equal(422, s, field)
        assert.are.same({ "read_only_field", field }, { b.error.code, b.error.field })
        s, b = req("POST", "/api/tasks/bulk", tok(A), { action = "update", ids = { target.id },
          changes = { title = "y", [field] = v } })
        assert.are.equal(422, s, field)
        assert.are.same({ "read_only_field", "changes." .. field }, { b.error.code, b.error.field })
        -- bob cannot hand a task to alice either
        s = req("POST", "/api/tasks", tok(B), { title = "gift", user_id = A })
        assert.are.equal(422, s)
      end
    end)
    assert.are.equal("0", q("select count(*) from tasks where title in ('x', 'gift')"))
  end)

  describe("MCP tools/call", function()
    local function call(token, name, args)
      local s, b = req("POST", "/mcp", token, { jsonrpc = "2.0", id = name, method = "tools/call",
        params = { name = name, arguments = args } }, { Accept = "application/json, text/event-stream" })
      return s, b
    end

    it("every tool: another user's ids answer a tool error and change nothing", function()
      local id = fx.task.id
      local ARGS = {
        complete_task = { id = id }, reopen_task = { id = fx.done.id }, delete_task = { id = id },
        update_task = { id = id, title = "owned by bob" },
        reschedule_tasks = { ids = { fx.bobs.id, id }, due_at = "2031-01-01T09:00:00Z" },
        snooze_reminder = { id = fx.reminded.id, ["for"] = "PT10M" },
      }
      local listed = {}
      local s, tools = req("POST", "/mcp", tok(B), { jsonrpc = "2.0", id = 0, method = "tools/list" },
        { Accept = "application/json, text/event-stream" })
      assert.are.equal(200, s)
      unchanged_for_alice(function()
        for _, tool in ipairs(tools.result.tools) do
          listed[tool.name] = true
          local args = ARGS[tool.name]
          local raw
          if args then
            local bobs_before = settled_snapshot(B)
            local _, b = call(tok(B), tool.name, args)
            raw = json.encode(b)
            assert.is_true(b.result.isError, tool.name .. ": " .. raw)
            assert.are.equal(bobs_before, settled_snapshot(B), tool.name .. " changed bob's tasks: " .. raw)
          else
            local own = { add_task = { title = "bob via mcp" }, list_tasks = { status = "all", q = "alpha" },
              plan_day = {} }
            assert.is_table(own[tool.name], "no authorization case for the MCP tool " .. tool.name)
            local _, b = call(tok(B), tool.name, own[tool.name])
            raw = json.encode(b)
            assert.is_falsy(b.result.isError, tool.name .. ": " .. raw)
          end
          leaks_nothing(raw, "mcp " .. tool.name, args ~= nil)
        end
      end)
      for name in pairs(ARGS) do assert.is_true(listed[name], name) end
    end)

    it("a tool argument naming the user is refused, never obeyed", function()
      unchanged_for_alice(function()
        local _, b = call(tok(B), "add_task", { title = "gift", user_id = A })
        assert.is_true(b.result.isError, json.encode(b))
        _, b = call(tok(B), "list_tasks", { user_id = A })
        assert.is_true(b.result.isError, json.encode(b))
      end)
    end)

    it("strangers get 401 for tools/call", function()
      for name, make in pairs(STRANGERS) do
        unchanged_for_alice(function()
          local s = call(make(), "delete_task", { id = fx.task.id })
          assert.are.equal(401, s, name)
        end)
      end
    end)
  end)

  describe("WebSocket", function()
    it("refuses the handshake (401) to every stranger, by sub-protocol and by query token", function()
      local clients = {}
      for name, make in pairs(STRANGERS) do
        local t = make()
        clients[#clients + 1] = { name, wsc.open { port = host.port, token = t, seconds = 5 } }
        if t then clients[#clients + 1] = { name .. " (query)", wsc.open { port = host.port, query_token = t,
          protocols = {}, seconds = 5 } } end
      end
      for _, c in ipairs(clients) do
        local r = c[2]:wait_record("refused", 10)
        assert.is_table(r, c[1] .. ": " .. json.encode(c[2]:records()) .. c[2]:stderr())
        assert.are.equal(401, r.refused, c[1])
        assert.are.same({}, c[2]:messages(), c[1])
      end
    end)

    it("binds the connection to the token's user: bob's resume from 0 replays none of alice's events", function()
      local alice_newest = tonumber(q("select max(event_id) from ws_events where user_id = '" .. A .. "'"))
      assert.is_true(alice_newest >= 5)
      local bob = wsc.open { port = host.port, token = tok(B), seconds = 8,
        send = { { type = "resume", after = 0 } } }
      local got = bob:wait(function(m) return #wsc.of_type(m, "resumed") >= 1 end, 10)
      assert.is_truthy(got, json.encode(bob:records()) .. bob:stderr())
      assert.are.equal(B, got[1].user)
      local raw = json.encode(got)
      leaks_nothing(raw, "ws resume")
      -- alice changes a task now: bob's connection gets nothing of it
      assert.are.equal(200, (req("PATCH", "/api/tasks/" .. fx.other.id, tok(A), { priority = "low" })))
      local alice = wsc.open { port = host.port, token = tok(A), seconds = 8,
        send = { { type = "resume", after = alice_newest } } }
      assert.is_truthy(alice:wait(function(m) return #wsc.of_type(m, "task.") >= 1 end, 10),
        json.encode(alice:records()))
      h.sleep(0.5)
      leaks_nothing(json.encode(bob:messages()), "ws live")
      bob:kill()
      alice:kill()
    end)
  end)

  it("logged no token, JWT, secret or password along the whole run", function()
    local log = host:log()
    local lines = select(2, log:gsub("\n", ""))
    assert.is_true(lines >= 20, "the host logged only " .. lines .. " lines:\n" .. log)
    assert.is_true(#minted >= 50, "the spec sent only " .. #minted .. " tokens")
    local function absent(needle, what)
      local at = log:find(needle, 1, true)
      assert.is_nil(at, what .. " in the log: " .. (at and log:sub(math.max(1, at - 300), at + 100) or ""))
    end
    for _, t in ipairs(minted) do
      absent(t, "a bearer token")
      absent(t:match("[^.]+$"), "a token's signature")
    end
    for _, secret in ipairs { h.dev_secret, DB_PASSWORD, CURSOR_SECRET, fx.webhook_secret } do
      absent(secret, "a secret")
    end
    -- anything shaped like a JWT (base64url JSON header, payload, signature), ours or not
    local jwt_at = log:find("eyJ[%w_-]+%.eyJ[%w_-]*%.?[%w_-]*")
    assert.is_nil(jwt_at, "a JWT in the log: " .. (jwt_at and log:sub(math.max(1, jwt_at - 300), jwt_at + 200) or ""))
    local bearer_at = log:lower():find("bearer[%s%.:=]+[%w_-]+")
    assert.is_nil(bearer_at, "a bearer credential in the log: "
      .. (bearer_at and log:sub(math.max(1, bearer_at - 300), bearer_at + 200) or ""))
  end)

  it("logged no handler failure along the way", function()
    assert.is_nil(host:log():find('"level":"error"', 1, true), host:log():sub(-3000))
  end)
end)

-- /mcp at the protocol level: JSON-RPC 2.0 answers and error codes, the Streamable HTTP
-- transport's status codes, bearer authentication. The official SDK client drives the
-- same endpoint in mcp_sdk_spec.lua.
local h = require "spec.helpers"
local json = require "json"

describe("MCP endpoint", function()
  local host
  local token = h.token("mcp-raw")

  lazy_setup(function() host = h.start({ bundles = { "services/api", "services/chat" } }) end)
  lazy_teardown(function() if host then host:stop() end end)

  local function rpc(body, headers)
    local hd = { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" }
    for k, v in pairs(headers or {}) do hd[k] = v end
    return host:request("POST", "/mcp", { token = token, headers = hd,
      body = type(body) == "string" and body or json.encode(body) })
  end

  it("initializes with the version the client asked for when it is supported, else the newest", function()
    local s, b = rpc { jsonrpc = "2.0", id = 1, method = "initialize",
      params = { protocolVersion = "2025-03-26", capabilities = {}, clientInfo = { name = "t", version = "1" } } }
    assert.equal(200, s)
    assert.equal(1, b.id)
    assert.equal("2025-03-26", b.result.protocolVersion)
    assert.is_table(b.result.capabilities.tools)
    s, b = rpc { jsonrpc = "2.0", id = "x", method = "initialize", params = { protocolVersion = "1999-01-01" } }
    assert.equal(200, s)
    assert.equal("x", b.id)
    assert.equal("2025-11-25", b.result.protocolVersion)
  end)

  it("answers notifications and client responses with 202 and no body", function()
    local s, b = rpc { jsonrpc = "2.0", method = "notifications/initialized" }
    assert.equal(202, s)
    assert.equal("", b)
    s = rpc { jsonrpc = "2.0", id = 9, result = {} }
    assert.equal(202, s)
  end)

  it("uses the JSON-RPC error codes", function()
    local s, b = rpc("{not json")
    assert.equal(400, s)
    assert.equal(-32700, b.error.code)
    assert.equal(json.null, b.id)
    s, b = rpc { id = 1, method = "ping" }
    assert.equal(200, s)
    assert.equal(-32600, b.error.code)
    s, b = rpc { { jsonrpc = "2.0", id = 1, method = "ping" } }
    assert.equal(200, s)
    assert.equal(-32600, b.error.code)
    s, b = rpc { jsonrpc = "2.0", id = 2, method = "resources/list" }
    assert.equal(200, s)
    assert.equal(-32601, b.error.code)
    assert.equal(2, b.id)
    for i, params in ipairs { { name = "nope" }, { arguments = {} }, { name = "add_task", arguments = "x" } } do
      s, b = rpc { jsonrpc = "2.0", id = 2 + i, method = "tools/call", params = params }
      assert.equal(200, s)
      assert.equal(-32602, b.error.code)
      assert.equal(2 + i, b.id)
    end
    s, b = rpc { jsonrpc = "2.0", id = 6, method = "ping" }
    assert.equal(200, s)
    assert.same({}, b.result)
  end)

  it("answers every tool's refused input as a tool error with the reason, never a 500", function()
    local bad = {
      add_task = { title = "" },
      list_tasks = { status = "sometimes" },
      complete_task = { id = 5 },
      reopen_task = {},
      delete_task = { id = "not-a-uuid" },
      update_task = { id = "00000000-0000-4000-8000-000000000000", priority = "extreme" },
      reschedule_tasks = { ids = { "00000000-0000-4000-8000-000000000000" } },
      snooze_reminder = { id = "00000000-0000-4000-8000-000000000000", ["for"] = "soon" },
      plan_day = { date = "yesterday" },
    }
    for name, args in pairs(bad) do
      local s, b = rpc { jsonrpc = "2.0", id = name, method = "tools/call", params = { name = name, arguments = args } }
      assert.equal(200, s, name)
      assert.is_true(b.result.isError, name)
      assert.is_string(b.result.content[1].text, name)
      assert.is_table(b.result.structuredContent.error, name)
    end
  end)

  it("snooze_reminder without the notification bundle: a tool error saying so, never a 500", function()
    local s, task = host:request("POST", "/api/tasks", { token = token, body = { title = "no reminders here" } })
    assert.equal(201, s)
    local b
    s, b = rpc { jsonrpc = "2.0", id = 7, method = "tools/call",
      params = { name = "snooze_reminder", arguments = { id = task.id, ["for"] = "PT10M" } } }
    assert.equal(200, s)
    assert.is_true(b.result.isError)
    assert.equal("reminders_unavailable", b.result.structuredContent.error.code)
  end)

  it("refuses an unsupported protocol version header, a foreign origin, other content types", function()
    local s, b = rpc({ jsonrpc = "2.0", id = 1, method = "ping" }, { ["MCP-Protocol-Version"] = "2020-01-01" })
    assert.equal(400, s)
    assert.equal(-32600, b.error.code)
    s = rpc({ jsonrpc = "2.0", id = 1, method = "ping" }, { ["MCP-Protocol-Version"] = "2025-06-18" })
    assert.equal(200, s)
    s = rpc({ jsonrpc = "2.0", id = 1, method = "ping" }, { ["Origin"] = "https://evil.example" })
    assert.equal(403, s)
    s = rpc({ jsonrpc = "2.0", id = 1, method = "ping" }, { ["Content-Type"] = "text/plain" })
    assert.equal(415, s)
  end)

  it("offers no event stream: GET and DELETE answer 405 with Allow: POST", function()
    for _, m in ipairs { "GET", "DELETE" } do
      local s, _, headers = host:request(m, "/mcp", { token = token })
      assert.equal(405, s)
      assert.equal("POST", headers["allow"])
    end
  end)

  it("needs a bearer token: 401 with WWW-Authenticate", function()
    local s, _, headers = host:request("POST", "/mcp", { body = { jsonrpc = "2.0", id = 1, method = "ping" } })
    assert.equal(401, s)
    assert.matches('^Bearer realm="todo"', headers["www-authenticate"])
    s, _, headers = host:request("POST", "/mcp", { token = "bad.token.here",
      body = { jsonrpc = "2.0", id = 1, method = "ping" } })
    assert.equal(401, s)
    assert.matches("invalid_token", headers["www-authenticate"])
  end)

  it("logged no handler failure (no 500) along the way", function()
    assert.is_nil(host:log():find('"level":"error"', 1, true), host:log():sub(-3000))
  end)
end)

describe("MCP tool errors from the database", function()
  local host
  local token = h.token("mcp-db")

  lazy_setup(function()
    host = h.start({ bundles = { "services/api", "services/chat" } })
    -- a failure on the database's side for one title (not a value it refuses, class XX)
    h.psql([[CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF lower(NEW.title) = 'boom' THEN RAISE EXCEPTION 'secret-internals' USING ERRCODE = 'XX000'; END IF;
      RETURN NEW; END $$;
      CREATE TRIGGER boom BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION boom();]], host.database_url)
  end)
  lazy_teardown(function() if host then host:stop() end end)

  it("answer internal_error, the REST code, and never the database's text (it is logged)", function()
    local s, b = host:request("POST", "/mcp", { token = token,
      headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" },
      body = json.encode { jsonrpc = "2.0", id = 1, method = "tools/call",
        params = { name = "add_task", arguments = { title = "boom" } } } })
    assert.equal(200, s)
    assert.is_true(b.result.isError)
    assert.equal("internal_error", b.result.structuredContent.error.code)
    local text = json.encode(b)
    assert.is_nil(text:find("secret-internals", 1, true), text)
    assert.is_nil(text:find("XX000", 1, true), text)
    -- the chat says so in its words, without the database's either
    local cs, cb = host:request("POST", "/api/chat", { token = token, body = { message = "add boom" } })
    assert.equal(200, cs, json.encode(cb))
    assert.is_nil(json.encode(cb):find("secret-internals", 1, true), json.encode(cb))
    assert.truthy(host:log():find("secret-internals", 1, true))
  end)
end)

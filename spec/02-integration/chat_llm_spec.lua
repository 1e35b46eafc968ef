-- The chat bundle's optional language-model mode against a TEST DOUBLE of an
-- OpenAI-compatible chat-completions API (spec/support/llm_double.py; not a model:
-- scripted answers). Checks what is sent (key, model, the tools' JSON Schemas), that
-- tool calls run through the task repository, the fallback to the offline assistant on
-- timeout, errors and garbage, and the "yes" before deleting several tasks.
local h = require "spec.helpers"
local json = require "json"
local tools = require "chat.tools"

describe("chat with a language model (test double of the API)", function()
  local host, port, pid
  local token = h.token("llm-user")

  lazy_setup(function()
    port = h.free_port()
    local dir = h.sh("mktemp -d /tmp/llm-double.XXXXXX")
    os.execute(string.format("sh -c %s >/dev/null 2>&1", h.sh_quote("exec python3 spec/support/llm_double.py --port "
      .. port .. " --key test-key >>" .. dir .. "/double.log 2>&1 & echo $! >" .. dir .. "/pid")))
    local f = assert(io.open(dir .. "/pid"))
    pid = tonumber(f:read("a"))
    f:close()
    assert(h.eventually(function()
      return h.request("GET", "/double/requests", { port = port, timeout = 1 }) == 200
    end, 10), "the language-model double did not start")
    host = h.start({ bundles = { "services/api", "services/chat" }, env = {
      LLM_BASE_URL = "http://127.0.0.1:" .. port .. "/v1", LLM_API_KEY = "test-key", LLM_MODEL = "double-model",
      LLM_TIMEOUT_MS = "1000" } })
  end)
  lazy_teardown(function()
    if host then host:stop() end
    if pid then os.execute("kill " .. pid) end
  end)

  local function chat(message, cid)
    local s, b = host:request("POST", "/api/chat", { token = token,
      body = { message = message, conversation_id = cid, tz = "Europe/Berlin" } })
    assert.equal(200, s, json.encode(b))
    return b
  end
  local function requests() return select(2, h.request("GET", "/double/requests", { port = port })) end
  local function titles()
    local _, b = host:request("GET", "/api/tasks?sort=title", { token = token })
    local out = {}
    for i, t in ipairs(b.items) do out[i] = t.title end
    return out
  end

  it("sends the key, the model and the tools' schemas, and runs the model's tool calls", function()
    local r = chat("add Buy milk")
    assert.equal("double: read 1 tool results", r.response)
    assert.equal("add_task", r.tool_calls[1].name)
    assert.equal("Buy milk", r.tool_calls[1].result.task.title)
    assert.same({ "Buy milk" }, titles())
    local req = requests()[1]
    assert.equal("Bearer test-key", req.authorization)
    assert.equal("double-model", req.body.model)
    assert.equal(#tools.list, #req.body.tools)
    for i, t in ipairs(tools.list) do
      assert.equal("function", req.body.tools[i].type)
      assert.equal(t.name, req.body.tools[i]["function"].name)
      assert.same(t.input_schema.required, req.body.tools[i]["function"].parameters.required)
    end
    assert.matches("Europe/Berlin", req.body.messages[1].content)
    assert.equal("add Buy milk", req.body.messages[#req.body.messages].content)
  end)

  it("answers with the model's text when it calls no tool", function()
    local r = chat("hello")
    assert.equal("Hello from the double", r.response)
    assert.same({}, r.tool_calls)
  end)

  it("reports arguments that are not JSON to the model and creates nothing", function()
    local before = titles()
    local r = chat("bad args")
    assert.equal("invalid_arguments", r.tool_calls[1].result.error.code)
    assert.equal("double: read 1 tool results", r.response)
    assert.same(before, titles())
  end)

  it("falls back to the offline assistant on a timeout, an error or garbage", function()
    for _, m in ipairs { "slow", "error", "garbage" } do
      local t0 = os.time()
      local r = chat(m)
      assert.matches("I can add tasks", r.response, 1, true)
      assert.is_true(os.time() - t0 <= 3, m)
    end
    local r = chat("show my tasks [fail]")
    assert.equal("list_tasks", r.tool_calls[1].name)
    assert.matches("Buy milk", r.response)
  end)

  it("asks before the model deletes several tasks; 'yes' does it", function()
    assert.equal(201, (host:request("POST", "/api/tasks", { token = token, body = { title = "Second" } })))
    local r = chat("delete everything")
    assert.same({}, r.tool_calls)
    assert.matches("Say yes", r.response)
    assert.same({ "Buy milk", "Second" }, titles())
    r = chat("yes", r.conversation_id)
    assert.equal(2, #r.tool_calls)
    assert.same({}, titles())
  end)

  it("logged no handler failure (no 500) along the way", function()
    assert.is_nil(host:log():find('"level":"error"', 1, true), host:log():sub(-3000))
  end)
end)

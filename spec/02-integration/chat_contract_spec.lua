-- The chat bundle's routes against spec/contracts/openapi.yaml (the operations marked
-- `x-bundle: chat`): every route, its successes and its errors, recorded and checked by
-- spec/support/openapi_check.py (status documented, headers present, bodies valid).
local h = require "spec.helpers"
local contract = require "spec.support.contract"
local json = require "json"

describe("chat routes: OpenAPI contract", function()
  it("every response matches the document", function()
    local host = h.start({ bundles = { "services/api", "services/chat" } })
    finally(function() host:stop() end)
    local token = h.token("contract-chat")
    local call, observed = contract.recorder(function() return host, token end)
    local json_ct = { ["Content-Type"] = "application/json" }
    local _, r = call("POST", "/api/chat", { body = { message = "add call the bank tomorrow at 9am #money p1",
      tz = "Europe/Berlin" } })
    local cid = r.conversation_id
    call("POST", "/api/chat", { body = { message = "show my tasks", conversation_id = cid } })
    call("POST", "/api/chat", { body = { message = "complete the first one", conversation_id = cid } })
    call("POST", "/api/chat", { body = { message = "delete task 00000000-0000-4000-8000-000000000000" } })
    call("POST", "/api/chat", { body = { message = "plan my day", conversation_id = cid } })
    call("POST", "/api/chat",
      { body = { message = "hello", conversation_id = "00000000-0000-4000-8000-000000000000" } })
    call("POST", "/api/chat", { body = { message = "" } })
    call("POST", "/api/chat", { body = "{", headers = json_ct })
    call("POST", "/api/chat", { body = "hi", headers = { ["Content-Type"] = "text/plain" } })
    call("POST", "/api/chat", { token = false, body = { message = "hi" } })
    call("GET", "/api/conversations")
    call("GET", "/api/conversations?limit=0")
    call("GET", "/api/conversations", { token = false })
    call("GET", "/api/conversations/" .. cid .. "/messages")
    call("GET", "/api/conversations/" .. cid .. "/messages?limit=x")
    call("GET", "/api/conversations/nope/messages")
    call("GET", "/api/conversations/" .. cid .. "/messages", { token = false })
    call("DELETE", "/api/conversations/" .. cid)
    call("DELETE", "/api/conversations/" .. cid)
    call("DELETE", "/api/conversations/" .. cid, { token = false })
    call("POST", "/api/parse", { body = { text = "Pay rent every 1st at 9am p1 #home", tz = "Europe/Paris" } })
    call("POST", "/api/parse", { body = { text = "buy milk" } })
    call("POST", "/api/parse", { body = { text = "tomorrow" } })
    call("POST", "/api/parse", { body = "[", headers = json_ct })
    call("POST", "/api/parse", { body = "x", headers = { ["Content-Type"] = "text/plain" } })
    call("POST", "/api/parse", { token = false, body = { text = "x" } })
    local mcp = { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" }
    local function rpc(msg, extra)
      local hd = {}
      for k, v in pairs(mcp) do hd[k] = v end
      for k, v in pairs(extra or {}) do hd[k] = v end
      return call("POST", "/mcp", { body = type(msg) == "string" and msg or json.encode(msg), headers = hd })
    end
    rpc { jsonrpc = "2.0", id = 1, method = "initialize", params = { protocolVersion = "2025-11-25" } }
    rpc { jsonrpc = "2.0", method = "notifications/initialized" }
    rpc { jsonrpc = "2.0", id = 2, method = "tools/list" }
    rpc { jsonrpc = "2.0", id = 3, method = "tools/call", params = { name = "list_tasks", arguments = {} } }
    rpc { jsonrpc = "2.0", id = 4, method = "tools/call", params = { name = "nope" } }
    rpc("{")
    rpc({ jsonrpc = "2.0", id = 5, method = "ping" }, { ["MCP-Protocol-Version"] = "1.0" })
    rpc({ jsonrpc = "2.0", id = 6, method = "ping" }, { ["Origin"] = "https://elsewhere.example" })
    rpc({ jsonrpc = "2.0", id = 7, method = "ping" }, { ["Content-Type"] = "text/plain" })
    call("POST", "/mcp", { token = false, body = { jsonrpc = "2.0", id = 1, method = "ping" } })
    call("GET", "/mcp")
    call("GET", "/mcp", { token = false })
    call("DELETE", "/mcp")
    call("DELETE", "/mcp", { token = false })

    contract.check(observed, { bundle = "chat" })
  end)
end)

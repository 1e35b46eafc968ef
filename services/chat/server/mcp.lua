--- `/mcp`: the task tools for outside AI clients, over the Model Context Protocol's
-- Streamable HTTP transport (JSON-RPC 2.0). Stateless: no session id, every POST
-- carries one message and answers with one JSON body (`application/json`), which the
-- transport allows; a notification or a response from the client is answered 202 with
-- no body; GET (a server-sent event stream) is not offered: 405. Bearer tokens are the
-- REST API's (401 with WWW-Authenticate, from web.guard). Tools run through
-- chat.server.exec, so the user's scoping is the REST API's.
-- @module chat.server.mcp

local json = require "json"
local tools = require "chat.tools"
local exec = require "chat.server.exec"
local guard = require "web.guard"
local timer = require "timer"

local M = {}

--- Protocol revisions this server speaks, newest first.
M.VERSIONS = { "2025-11-25", "2025-06-18", "2025-03-26" }
local SUPPORTED = {}
for _, v in ipairs(M.VERSIONS) do SUPPORTED[v] = true end

M.SERVER_INFO = { name = "todo-chatbot", version = "1.0.0" }

-- JSON-RPC error codes
local PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602

local JSON = { ["Content-Type"] = "application/json" }

local function rpc_error(id, code, message, data)
  local e = { code = code, message = message }
  if data ~= nil then e.data = data end
  return { jsonrpc = "2.0", id = id == nil and json.null or id, error = e }
end

local function result(id, value) return { jsonrpc = "2.0", id = id, result = value } end

local function tool_list()
  local out = {}
  for i, t in ipairs(tools.list) do
    out[i] = { name = t.name, description = t.description, inputSchema = t.input_schema }
  end
  return { tools = json.array(out) }
end

-- A tool's outcome as a CallToolResult: the JSON as text (for any client) and as
-- structured content; a refused input or a missing task is a tool error (isError), so
-- the model can read the message and correct itself.
local function call_result(r)
  local text = json.encode(r)
  if r.error then
    return { content = json.array { { type = "text", text = r.error.message } }, isError = true,
      structuredContent = r }
  end
  return { content = json.array { { type = "text", text = text } }, structuredContent = r, isError = false }
end

local function valid_id(id)
  return id == nil or math.type(id) == "integer" or (type(id) == "string" and #id <= 200)
end

--- Handle one JSON-RPC message for a user.
-- @tparam string user
-- @tparam any msg the decoded message
-- @tparam table env `{tz, now}`
-- @treturn table|nil the response message, or nil for a notification or a response
function M.handle(user, msg, env)
  if type(msg) ~= "table" then return rpc_error(nil, INVALID_REQUEST, "a JSON-RPC message must be an object") end
  if msg[1] ~= nil then
    return rpc_error(nil, INVALID_REQUEST, "batches are not supported; send one message per request")
  end
  if msg.jsonrpc ~= "2.0" then return rpc_error(msg.id, INVALID_REQUEST, "jsonrpc must be \"2.0\"") end
  if msg.method == nil then
    if msg.result ~= nil or msg.error ~= nil then return nil end -- a response from the client
    return rpc_error(msg.id, INVALID_REQUEST, "method is required")
  end
  if type(msg.method) ~= "string" then return rpc_error(msg.id, INVALID_REQUEST, "method must be a string") end
  if msg.id == nil or msg.id == json.null then
    return nil -- notifications (initialized, cancelled ...) need no answer
  end
  local id = msg.id
  if not valid_id(id) then return rpc_error(nil, INVALID_REQUEST, "id must be a string or an integer") end
  local params = msg.params
  if params ~= nil and type(params) ~= "table" then
    return rpc_error(id, INVALID_PARAMS, "params must be an object")
  end
  params = params or {}
  local method = msg.method
  if method == "initialize" then
    local asked = params.protocolVersion
    local version = (type(asked) == "string" and SUPPORTED[asked]) and asked or M.VERSIONS[1]
    return result(id, {
      protocolVersion = version,
      capabilities = { tools = { listChanged = false } },
      serverInfo = M.SERVER_INFO,
      instructions = "Tools over the user's todo tasks. Times are RFC 3339 with an offset; ids are UUIDs "
        .. "(list_tasks shows them).",
    })
  elseif method == "ping" then
    return result(id, {})
  elseif method == "tools/list" then
    return result(id, tool_list())
  elseif method == "tools/call" then
    local name, args = params.name, params.arguments
    if type(name) ~= "string" then return rpc_error(id, INVALID_PARAMS, "params.name must be a tool name") end
    if not tools.by_name[name] then return rpc_error(id, INVALID_PARAMS, "Unknown tool: " .. name) end
    if args == nil then args = {} end
    if type(args) ~= "table" or (args[1] ~= nil) then
      return rpc_error(id, INVALID_PARAMS, "params.arguments must be an object")
    end
    return result(id, call_result(exec.call(user, name, args, env)))
  end
  return rpc_error(id, METHOD_NOT_FOUND, "Method not found: " .. method)
end

-- Origins a browser may call from: none but this host's own (the transport asks servers
-- to refuse other origins, against DNS rebinding); clients outside a browser send none.
local function origin_ok(req)
  local origin = req.headers and req.headers.origin
  if not origin or origin == "null" then return origin == nil end
  local host = req.headers.host
  local allowed = os.getenv("MCP_ALLOWED_ORIGINS")
  if allowed then
    for o in allowed:gmatch("[^,%s]+") do if o == origin then return true end end
  end
  return host ~= nil and (origin == "http://" .. host or origin == "https://" .. host)
end

--- POST /mcp (the request already authenticated: req.user).
function M.post(req)
  if not origin_ok(req) then
    return 403, rpc_error(nil, INVALID_REQUEST, "origin not allowed"), JSON
  end
  local pv = req.headers["mcp-protocol-version"]
  if pv and not SUPPORTED[pv] then
    return 400, rpc_error(nil, INVALID_REQUEST, "unsupported MCP-Protocol-Version " .. tostring(pv):sub(1, 40)
      .. "; supported: " .. table.concat(M.VERSIONS, ", ")), JSON
  end
  local ct = req.headers["content-type"]
  if not ct or not guard.is_json_type(ct) then
    return 415, rpc_error(nil, INVALID_REQUEST, "send the message as application/json"), JSON
  end
  local msg, err = json.decode(req.body or "")
  if msg == nil then
    return 400, rpc_error(nil, PARSE_ERROR, "Parse error: " .. tostring(err):sub(1, 200)), JSON
  end
  local tz = req.headers["x-timezone"]
  if not (type(tz) == "string" and #tz <= 64 and require("tz").valid(tz)) then tz = "UTC" end
  local reply = M.handle(req.user, msg, { tz = tz, now = math.floor(timer.now()) })
  if reply == nil then return 202, "", {} end
  return 200, reply, JSON
end

--- GET and DELETE /mcp: no event stream, no sessions.
function M.not_allowed()
  return 405, rpc_error(nil, INVALID_REQUEST, "this server answers POST only (no event stream, no sessions)"),
    { ["Allow"] = "POST", ["Content-Type"] = "application/json" }
end

return M

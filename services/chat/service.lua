-- services/chat: the chat assistant (POST /api/chat and the conversations, stored in
-- PostgreSQL), the quick-add parser (POST /api/parse) and the MCP server (/mcp), all over
-- the task tools of lua/chat/tools.lua run through the task repository (lua/tasks/repo.lua)
-- like the REST API. The offline assistant is lua/chat/ (pure Lua); this bundle adds the
-- I/O: chat.server.* (execution, storage, the optional language model, MCP).
-- Loading this file does no I/O.

local guard = require "web.guard"
local handlers = require "chat.server.handlers"
local mcp = require "chat.server.mcp"

local function route(method, path, handler)
  return { method = method, path = path, handler = guard.authenticated(handler) }
end

return {
  name = "chat",
  routes = {
    route("POST", "/api/chat", handlers.chat),
    route("GET", "/api/conversations", handlers.conversations),
    route("GET", "/api/conversations/:id/messages", handlers.messages),
    route("DELETE", "/api/conversations/:id", handlers.delete),
    route("POST", "/api/parse", handlers.parse),
    route("POST", "/mcp", mcp.post),
    route("GET", "/mcp", mcp.not_allowed),
    route("DELETE", "/mcp", mcp.not_allowed),
  },
}

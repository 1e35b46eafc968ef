-- services/api: the manifest of the API bundle. It declares the routes of the Task API
-- (issue 3) and of the task history (issue 4); every route needs a bearer token
-- (web.guard.authenticated). The handlers (api.*) translate requests into calls of the
-- task repository (lua/tasks/repo.lua), which publishes the task events; the bundle
-- consumes task-events as the "history" group (tasks.history); bus.define starts the
-- consumers. Loading this file does no I/O.

local guard = require "web.guard"
local bus = require "bus"
local tasks = require "api.tasks.handlers"
local history_routes = require "api.tasks.history"
local history = require "tasks.history"
local recurrence_preview = require "api.recurrence.preview"

local function route(method, path, handler)
  return { method = method, path = path, handler = guard.authenticated(handler) }
end

return bus.define {
  name = "api",
  routes = {
    route("POST", "/api/tasks", tasks.create),
    route("GET", "/api/tasks", tasks.list),
    route("POST", "/api/tasks/bulk", tasks.bulk),
    route("GET", "/api/tasks/:id", tasks.get),
    route("PATCH", "/api/tasks/:id", tasks.patch),
    route("DELETE", "/api/tasks/:id", tasks.delete),
    route("POST", "/api/tasks/:id/complete", tasks.complete),
    route("POST", "/api/tasks/:id/reopen", tasks.reopen),
    route("GET", "/api/tags", tasks.tags),
    route("GET", "/api/tasks/:id/history", history_routes.task_history),
    route("GET", "/api/activity", history_routes.activity),
    route("POST", "/api/activity/:id/undo", history_routes.undo),
    route("GET", "/api/recurrence/preview", recurrence_preview.preview),
  },
  subscriptions = {
    -- idempotent: a history row is keyed by its event id (ON CONFLICT DO NOTHING), so the
    -- bus need not record each event as well (one bus_inbox row less per change)
    { topic = "task-events", group = "history", handler = history.on_event, batch_handler = history.on_events,
      idempotent = true },
  },
}

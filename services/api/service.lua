-- services/api: the manifest of the API bundle. It declares the routes of the Task API
-- (issue 3); every route needs a bearer token (http.guard.authenticated).
-- Loading this file does no I/O.

local guard = require "http.guard"
local tasks = require "tasks.handlers"

local function route(method, path, handler)
  return { method = method, path = path, handler = guard.authenticated(handler) }
end

return {
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
  },
}

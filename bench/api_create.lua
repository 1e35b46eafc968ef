-- wrk script: POST /api/tasks with varied bodies.
--   TOKEN=$(build/todo-host token --sub bench) wrk -t2 -c32 -d30s -s bench/api_create.lua http://127.0.0.1:8080
-- luacheck: globals wrk request
local token = os.getenv("TOKEN") or error("set TOKEN (todo-host token --sub bench)")
local priorities = { "none", "low", "medium", "high" }
local n = 0

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"

function request()
  n = n + 1
  local body = string.format(
    '{"title":"bench task %d","priority":"%s","tags":["bench","t%d"],"due_at":"2026-%02d-%02dT09:00:00Z"}',
    n, priorities[n % 4 + 1], n % 10, n % 12 + 1, n % 28 + 1)
  return wrk.format(nil, "/api/tasks", nil, body)
end

-- wrk script: GET /api/tasks with a mix of filters and sorts (run api_create.lua first).
--   TOKEN=$(build/todo-host token --sub bench) wrk -t2 -c32 -d30s -s bench/api_list.lua http://127.0.0.1:8080
-- luacheck: globals wrk request
local token = os.getenv("TOKEN") or error("set TOKEN (todo-host token --sub bench)")
local queries = {
  "/api/tasks",
  "/api/tasks?sort=due&limit=20",
  "/api/tasks?status=pending&priority=high,medium&sort=priority",
  "/api/tasks?tag=t3&tag=t4",
  "/api/tasks?due_after=2026-03-01T00:00:00Z&due_before=2026-04-01T00:00:00Z",
  "/api/tasks?q=bench%20task",
  "/api/tags",
}
local n = 0

wrk.headers["Authorization"] = "Bearer " .. token

function request()
  n = n + 1
  return wrk.format("GET", queries[n % #queries + 1])
end

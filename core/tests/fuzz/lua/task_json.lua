-- Fuzz driver of the Task API's body validation (fuzz_task_json.c): one input is a request
-- body. It is read as the routes read it (web.guard.json_body: the host's JSON decoder),
-- then validated as each route that takes a body does, with the real modules and no
-- database: POST /api/tasks and PATCH /api/tasks/:id (tasks.schema.task_input, which
-- tasks.repo.create/update call first), POST /api/tasks/bulk (tasks.bulk.parse, the body
-- itself and as the `changes` of an update). Every failure must follow the convention
-- (nil, message, code[, field]) and what is accepted must encode as JSON again (it is
-- stored and answered).
local check = require "fuzz_check"
local guard = require "web.guard"
local schema = require "tasks.schema"
local bulk = require "tasks.bulk"

local ID = "00000000-0000-4000-8000-000000000001"

return function(data)
  local req = { body = data, headers = { ["content-type"] = "application/json" } }
  local body, status, err = guard.json_body(req)
  if body == nil then
    check.response("json_body", status, err)
    check.that(status == 400 or status == 415, "json_body refused a body with %d", status)
    return
  end
  for _, mode in ipairs { "create", "patch" } do
    local fields, msg, code, field = schema.task_input(body, mode)
    check.convention("task_input " .. mode, fields, msg, code)
    check.that(field == nil or type(field) == "string", "task_input %s: field is a %s", mode, type(field))
    if fields then check.encodes("the " .. mode .. " fields", fields) end
  end
  check.convention("bulk.parse", bulk.parse(body))
  check.convention("bulk.parse changes", bulk.parse({ action = "update", ids = { ID }, changes = body }))
end

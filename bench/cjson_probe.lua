-- What Debian's lua-cjson (2.1.0) would change if it replaced the host's JSON, and how
-- fast each is on the same values (docs/benchmarks.md, "2026-12-04"). Not part of
-- `make bench`: lua-cjson is not a dependency of the project, so install it first
-- (apt-get install lua-cjson), then:  build/todo-host script bench/cjson_probe.lua
-- (script mode keeps the default package.cpath, so require "cjson" finds its .so).
local found, cjson = pcall(require, "cjson")
if not found then
  print("lua-cjson is not installed (apt-get install lua-cjson): " .. tostring(cjson))
  return
end
local json = require "json"
local function show(label, f)
  local ok, v = pcall(f)
  print(string.format("%-44s %s", label, ok and tostring(v) or ("error: " .. tostring(v))))
end
print("cjson version", cjson._VERSION)
show("encode(json.array({}))  [want []]", function() return cjson.encode(json.array({})) end)
show("encode({a=json.array({})})", function() return cjson.encode({ a = json.array({}) }) end)
show("encode(2^53 integer) [want 9007199254740992]", function() return cjson.encode(math.tointeger(2 ^ 53)) end)
show("encode(100000000000000) [want exact]", function() return cjson.encode(100000000000000) end)
show("encode('Europe/Paris') [want no \\/]", function() return cjson.encode("Europe/Paris") end)
show("encode(json.null)", function() return cjson.encode(json.null) end)
show("encode('\\127') [want \\u007f]", function() return cjson.encode("\127") end)
show("math.type(decode('1')) [want integer]", function() return math.type(cjson.decode("1")) end)
show("math.type(decode('{\"n\":7}').n)", function() return math.type(cjson.decode('{"n":7}').n) end)
show("tostring(decode('7'))", function() return tostring(cjson.decode("7")) end)
show("decode('[]') then encode [want []]", function() return cjson.encode(cjson.decode("[]")) end)
show("decode('null') == json.null", function() return cjson.decode("null") == json.null end)
show("decode lone surrogate \\ud800", function() return #cjson.decode('"\\ud800"') end)
show("decode invalid UTF-8 bytes", function() return #cjson.decode('"\255"') end)
-- speed: a list page of 20 tasks, encoded and decoded
local page = { items = json.array({}), next_cursor = json.null }
for i = 1, 20 do
  page.items[i] = { id = "0190c3c2-6f1e-7a3b-9c4d-" .. string.format("%012d", i), title = "task " .. i,
    description = "a description of task " .. i, completed = i % 3 == 0, priority = "medium",
    tags = json.array({ "home", "errand" }), due_at = "2026-05-01T09:00:00Z", tz = "Europe/Paris",
    created_at = "2026-04-01T08:00:00Z", updated_at = "2026-04-02T08:00:00Z", version = i,
    recurrence = json.null, reminders = json.array({}), series_id = json.null }
end
local one = page.items[1]
local function bench(label, f, n)
  local t = os.clock()
  for _ = 1, n do f() end
  local us = (os.clock() - t) / n * 1e6
  print(string.format("%-40s %8.2f us", label, us))
  return us
end
local N = 20000
local text = json.encode(page)
local t1 = json.encode(one)
print("page bytes", #text, "task bytes", #t1)
for round = 1, 3 do
  print("round", round)
  bench("json.encode(list page)", function() json.encode(page) end, N)
  bench("cjson.encode(list page)", function() cjson.encode(page) end, N)
  bench("json.encode(one task)", function() json.encode(one) end, N * 5)
  bench("cjson.encode(one task)", function() cjson.encode(one) end, N * 5)
  bench("json.decode(list page)", function() json.decode(text) end, N)
  bench("cjson.decode(list page)", function() cjson.decode(text) end, N)
  bench("json.decode(one task)", function() json.decode(t1) end, N * 5)
  bench("cjson.decode(one task)", function() cjson.decode(t1) end, N * 5)
end

-- Internal bus payloads (2026-12-04, issue 13 "decoding where [] versus {} does not
-- matter"): a task event as tasks.events writes it, decoded by each. The event's
-- `task_data` is the task itself (the history consumer stores it and GET
-- /api/tasks/:id/history serves it again), so its empty `tags` and `reminders` must stay
-- [] and its `version` an integer.
print("bus payload (task.updated)")
local event = json.encode({
  specversion = "1.0", id = "6d1c9a5e-1f1b-4c7e-9f3a-0b6f8f1f2a10", type = "task.updated",
  source = "todo/api", subject = one.id, time = "2026-05-01T09:00:00Z",
  data = { event_type = "updated", task_id = one.id, user_id = "user1", version = 3,
    changed = json.array({ "completed" }), timestamp = "2026-05-01T09:00:00Z",
    task_data = { id = one.id, title = "t", tags = json.array({}), reminders = json.array({}), version = 3 } },
})
local mine, theirs = json.decode(event), cjson.decode(event)
show("math.type(data.version) json / cjson", function()
  return math.type(mine.data.version) .. " / " .. math.type(theirs.data.version)
end)
show("tostring(data.version) json / cjson", function()
  return tostring(mine.data.version) .. " / " .. tostring(theirs.data.version)
end)
show("re-encoded task_data.tags json / cjson", function()
  return json.encode(mine.data.task_data.tags) .. " / " .. json.encode(theirs.data.task_data.tags)
end)
show("('v' .. version) as a string key json / cjson", function()
  return "v" .. mine.data.version .. " / " .. "v" .. theirs.data.version
end)
show("WebSocket {\"after\":5}: math.type(after)", function() return math.type(cjson.decode('{"after":5}').after) end)
show("MCP {\"id\":7}: math.type(id)", function() return math.type(cjson.decode('{"id":7}').id) end)
for _ = 1, 3 do
  bench("json.decode(bus event)", function() json.decode(event) end, N * 5)
  bench("cjson.decode(bus event)", function() cjson.decode(event) end, N * 5)
end

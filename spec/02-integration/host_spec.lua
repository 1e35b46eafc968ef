-- The Lua host through HTTP: the scheduler interleaves waiting handlers, errors
-- and budgets answer 500 and keep the process serving, start-up failures name
-- the file and line, SIGHUP reloads without dropping requests, SIGTERM drains.
local h = require "spec.helpers"

local function copy_fixture(name)
  local dir = h.sh("mktemp -d /tmp/todo-spec-bundle.XXXXXX") .. "/" .. name
  assert(select(2, h.sh("cp -r spec/fixtures/" .. name .. " " .. dir)))
  return dir
end

describe("todo-host", function()
  local host
  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                     env = { CPU_BUDGET_MS = 300, BUNDLE_MEMORY_MB = 32 } }
  end)
  lazy_teardown(function()
    if host then assert.are.equal(0, host:stop()) end
  end)

  it("runs waiting handlers concurrently on one loop", function()
    local results = h.concurrent(host.port, 40, "GET", function(i) return "/sleep/" .. i .. "?ms=300" end)
    local slowest = 0
    for i, r in ipairs(results) do
      assert.are.equal(200, r.status)
      assert.truthy(r.body:find('"id":"' .. i .. '"', 1, true), "answer " .. i .. " belongs to request " .. i)
      slowest = math.max(slowest, r.at)
    end
    -- 40 sequential sleeps would take 12 s; interleaved they take about 0.3 s
    assert.is_true(slowest < 2.0, "slowest answer after " .. slowest .. " s")
  end)

  it("answers a failing handler with 500, its request id, and logs the traceback", function()
    local status, body, headers = host:request("GET", "/fail", { headers = { ["X-Request-Id"] = "fail-1" } })
    assert.are.equal(500, status)
    assert.are.equal("internal_error", body.error.code)
    assert.are.equal("fail-1", body.error.request_id)
    assert.are.equal("fail-1", headers["x-request-id"])
    local found = h.eventually(function()
      for _, line in ipairs(host:log_lines()) do
        if line.request_id == "fail-1" and line.level == "error" then return line end
      end
    end)
    assert.truthy(found, "no error line for the request")
    assert.truthy(found.msg:find("service.lua:%d+: deliberate failure"), found.msg)
    assert.truthy(found.msg:find("stack traceback", 1, true))
    assert.are.equal(200, (host:request("GET", "/hello")))
  end)

  -- GET path, which must answer within 3 s (the budget is 300 ms): status, body.
  local function timed_get(path)
    local t0 = require("timer").monotonic()
    local status, body = host:request("GET", path)
    assert.is_true(require("timer").monotonic() - t0 < 3, path .. " ran past its CPU budget")
    return status, body
  end

  it("stops a runaway handler after the CPU budget and keeps serving", function()
    assert.are.equal(500, (timed_get("/spin")))
    assert.are.equal(200, (host:request("GET", "/hello")))
    assert.truthy(h.eventually(function() return host:log():find("CPU budget of 300 ms exceeded", 1, true) end))
  end)

  it("stops a runaway loop inside a coroutine the handler resumes", function()
    local status, body = timed_get("/spin-resume")
    assert.are.equal(200, status)
    assert.are.equal(false, body.ok)
    assert.truthy(body.err:find("CPU budget of 300 ms exceeded", 1, true), body.err)
  end)

  it("stops a runaway loop inside a coroutine.wrap function, and answers 500", function()
    assert.are.equal(500, (timed_get("/spin-wrap")))
    assert.are.equal(200, (host:request("GET", "/hello")))
  end)

  it("keeps coroutine.resume and coroutine.wrap behaving as Lua's", function()
    local status, b = host:request("GET", "/coroutines")
    assert.are.equal(200, status)
    assert.are.same({ 2, 20 }, { b.first, b.second })
    assert.are.same({ true, "x", "y" }, b.r1)
    assert.are.equal(false, b.r2_ok)
    assert.truthy(b.r2_err:find("inner failure", 1, true), b.r2_err)
    assert.are.equal(false, b.r3_ok)
    assert.are.equal("cannot resume dead coroutine", b.r3_err)
    assert.are.equal(false, b.ok_wrap)
    assert.truthy(b.wrap_err:find("service.lua:%d+: wrapped failure"), b.wrap_err)
    assert.are.equal("dead", b.status)
  end)

  it("enforces the bundle's memory ceiling", function()
    local status = host:request("GET", "/hog")
    assert.are.equal(500, status)
    assert.are.equal(200, (host:request("GET", "/hello")))
    local _, metrics = host:request("GET", "/metrics")
    local bytes = tonumber(metrics:match('todo_host_lua_memory_bytes{[^}]*bundle="hello"[^}]*} (%d+)'))
    assert.truthy(bytes, "no memory gauge for the bundle")
    assert.is_true(bytes < 32 * 1024 * 1024)
  end)

  it("rejects response headers that would split the response", function()
    local status, _, headers = host:request("GET", "/bad-header")
    assert.are.equal(500, status)
    assert.is_nil(headers["injected"])
  end)

  it("serves health, readiness and metrics", function()
    assert.are.equal(200, (host:request("GET", "/healthz")))
    local status, body = host:request("GET", "/readyz")
    assert.are.equal(200, status)
    assert.are.equal("ready", body.status)
    local _, metrics = host:request("GET", "/metrics")
    local series = 'todo_host_http_requests_total{route="/hello",method="GET",status="200"} %d+'
    assert.truthy(metrics:find(series))
    assert.truthy(metrics:find("todo_host_http_request_duration_seconds_bucket", 1, true))
    assert.truthy(metrics:find("todo_host_pg_pool_connections", 1, true))
  end)

  it("writes one JSON access-log line per request", function()
    host:request("GET", "/hello", { headers = { ["X-Request-Id"] = "access-1" } })
    local lines = h.eventually(function()
      local found = {}
      for _, line in ipairs(host:log_lines()) do
        if line.request_id == "access-1" and line.msg == "request" then found[#found + 1] = line end
      end
      return #found > 0 and found
    end)
    assert.are.equal(1, #lines)
    assert.are.equal(200, lines[1].status)
    assert.are.equal("/hello", lines[1].path)
    assert.is_number(lines[1].duration_ms)
  end)
end)

describe("start-up", function()
  local function run(args, env)
    return h.sh("env " .. (env or "") .. " PORT=" .. h.free_port() .. " WORKERS=1 " ..
      h.sh_quote(h.host_bin) .. " " .. args .. "; echo exit=$?")
  end

  it("names the file and line of a manifest syntax error", function()
    local out = run("run spec/fixtures/broken-syntax")
    assert.truthy(out:find("spec/fixtures/broken%-syntax/service.lua:3:"), out)
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("names the file and line of an error raised while loading", function()
    local out = run("run spec/fixtures/boom-at-load")
    assert.truthy(out:find("boom%-at%-load/service.lua:2: cannot start: missing setting"), out)
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("stops a manifest whose top level never finishes", function()
    local t0 = require("timer").monotonic()
    local out = run("run spec/fixtures/spin-at-load", "CPU_BUDGET_MS=200")
    assert.is_true(require("timer").monotonic() - t0 < 10)
    assert.truthy(out:find("CPU budget of 200 ms exceeded while loading", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("names the route that lacks a handler", function()
    local out = run("run spec/fixtures/broken-routes")
    assert.truthy(out:find("routes%[1%] %(GET /x%): handler must be a function"), out)
  end)

  it("refuses a missing bundle directory", function()
    local out = run("run spec/fixtures/does-not-exist")
    assert.truthy(out:find("does%-not%-exist: no such bundle directory"), out)
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("refuses a bad setting with one line naming it", function()
    local out = run("run spec/fixtures/hello", "MAX_BODY_BYTES=lots")
    assert.truthy(out:find("MAX_BODY_BYTES=lots: expected a whole number", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
    out = run("run spec/fixtures/hello", "PG_PLAN_CACHE_MODE=sometimes")
    assert.truthy(out:find("PG_PLAN_CACHE_MODE=sometimes: expected auto, force_generic_plan or " ..
      "force_custom_plan", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
    out = run("run spec/fixtures/hello", "LOG_LEVEL=loud")
    assert.truthy(out:find("LOG_LEVEL=loud: expected debug, info, warn or error", 1, true), out)
    -- the pool's settings are validated with the others (runtime/config.c)
    out = run("run spec/fixtures/hello", "PG_POOL_SIZE=0")
    assert.truthy(out:find("PG_POOL_SIZE=0: expected a whole number from 1 to 1000", 1, true), out)
    assert.truthy(out:find("exit=2", 1, true), out)
    out = run("run spec/fixtures/hello", "PG_PIPELINE_CORK=maybe")
    assert.truthy(out:find("PG_PIPELINE_CORK=maybe: expected on or off", 1, true), out)
    out = run("run --workers 0 spec/fixtures/hello")
    assert.truthy(out:find("--workers=0", 1, true) or out:find("expected a whole number from 1", 1, true), out)
  end)

  it("prints help and version", function()
    local out = h.sh(h.host_bin .. " --help")
    assert.truthy(out:find("todo-host run", 1, true))
    assert.truthy(h.sh(h.host_bin .. " --version"):find("^todo%-host %d+%.%d+%.%d+"))
  end)
end)

describe("lifecycle", function()
  it("reloads on SIGHUP without dropping a request", function()
    local dir = copy_fixture("hello")
    local host = h.start { bundles = { dir }, no_database = true }
    finally(function() host:stop() end)
    assert.are.equal("hello", select(2, host:request("GET", "/hello")))
    -- a request in flight across the reload is answered by the old state
    local conn = require("socket").tcp()
    conn:settimeout(5)
    assert(conn:connect("127.0.0.1", host.port))
    conn:send("GET /sleep/1?ms=400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    h.sleep(0.1)
    local src = assert(io.open(dir .. "/service.lua")):read("a")
    src = src:gsub('return 200, "hello"', 'return 200, "hello again"')
    local f = assert(io.open(dir .. "/service.lua", "w"))
    f:write(src)
    f:close()
    os.execute("kill -HUP " .. host.pid)
    h.sleep(0.2)
    assert.are.equal("hello again", select(2, host:request("GET", "/hello")))
    local status, body = h.read_response(conn)
    conn:close()
    assert.are.equal(200, status)
    assert.truthy(body:find('"slept":400', 1, true))
  end)

  it("keeps serving the old bundles when a reload fails", function()
    local dir = copy_fixture("hello")
    local host = h.start { bundles = { dir }, no_database = true }
    finally(function() host:stop() end)
    local f = assert(io.open(dir .. "/service.lua", "a"))
    f:write("\nthis is not lua\n")
    f:close()
    os.execute("kill -HUP " .. host.pid)
    h.sleep(0.2)
    assert.are.equal(200, (host:request("GET", "/hello")))
    assert.truthy(h.eventually(function() return host:log():find("reload failed", 1, true) end))
  end)

  it("reloads on file change with --watch", function()
    local dir = copy_fixture("hello")
    local host = h.start { bundles = { dir }, no_database = true, args = "--watch" }
    finally(function() host:stop() end)
    h.sleep(1.1) -- file times have one-second granularity on some filesystems
    local src = assert(io.open(dir .. "/service.lua")):read("a")
    local f = assert(io.open(dir .. "/service.lua", "w"))
    f:write((src:gsub('return 200, "hello"', 'return 200, "watched"')))
    f:close()
    local body
    for _ = 1, 40 do
      body = select(2, host:request("GET", "/hello"))
      if body == "watched" then break end
      h.sleep(0.1)
    end
    assert.are.equal("watched", body)
  end)

  it("drains on SIGTERM: readiness turns 503, in-flight requests finish, exit 0", function()
    local host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true }
    local conn = require("socket").tcp()
    conn:settimeout(5)
    assert(conn:connect("127.0.0.1", host.port))
    conn:send("GET /sleep/1?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
    -- a keep-alive connection open before the signal can still ask for readiness
    local probe = require("socket").tcp()
    probe:settimeout(5)
    assert(probe:connect("127.0.0.1", host.port))
    h.sleep(0.1)
    os.execute("kill -TERM " .. host.pid)
    h.sleep(0.1)
    local status = h.read_response(conn)
    assert.are.equal(200, status)
    conn:close()
    probe:close()
    assert.are.equal(0, host:signal("TERM", 10))
    assert.truthy(host:log():find('"msg":"stopped"', 1, true))
  end)

  it("runs background tasks from on_start, stops them on SIGTERM and waits for them", function()
    local host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true }
    local first = select(2, host:request("GET", "/ticks")).ticks
    h.sleep(0.3)
    local second = select(2, host:request("GET", "/ticks")).ticks
    assert.is_true(second > first, "ticker did not advance")
    -- a failing background task is logged and the host keeps serving
    assert.are.equal(202, (host:request("POST", "/spawn-failing")))
    assert.truthy(h.eventually(function() return host:log():find("background task failed: .-background boom") end))
    local t0 = require("timer").monotonic()
    assert.are.equal(0, host:stop())
    assert.is_true(require("timer").monotonic() - t0 < 2, "stop waited for the full drain timeout")
    assert.truthy(host:log():find('"msg":"ticker stopped"', 1, true))
  end)

  it("restarts background tasks on reload and retires the old ones", function()
    local dir = copy_fixture("hello")
    local host = h.start { bundles = { dir }, no_database = true }
    finally(function() host:stop() end)
    h.sleep(0.3)
    assert.is_true(select(2, host:request("GET", "/ticks")).ticks >= 3)
    os.execute("kill -HUP " .. host.pid)
    h.sleep(0.1)
    -- the new state's ticker started from zero; the old one logged its stop
    assert.is_true(select(2, host:request("GET", "/ticks")).ticks <= 3)
    assert.truthy(h.eventually(function() return host:log():find('"msg":"ticker stopped"', 1, true) end))
  end)

  it("runs several workers on one port", function()
    local host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true, workers = 2 }
    for _ = 1, 40 do host:request("GET", "/hello") end
    -- each worker logs the requests it served with its own pid
    local pids, n = {}, 0
    h.eventually(function()
      for _, line in ipairs(host:log_lines()) do
        if line.msg == "request" and line.pid and not pids[line.pid] then
          pids[line.pid] = true
          n = n + 1
        end
      end
      return n == 2
    end)
    assert.are.equal(2, n)
    assert.are.equal(0, host:stop())
  end)
end)

-- /metrics with several workers (issue 19): one consistent exposition for the whole
-- process group, as Prometheus expects from one target. Whichever worker answers a
-- scrape, the counters are the group's totals: one sample per series (no per-worker
-- split), equal to the requests made across both workers, never going backwards
-- between scrapes. Gauges stay per worker, labelled with its pid, for every worker.
local h = require "spec.helpers"
local wsc = require "spec.support.wsclient"

local function sample(metrics, series)
  local found = {}
  local pattern = "\n" .. series:gsub("[%%%-%.%[%]%(%)%+%*%?%^%$]", "%%%0") .. " (%d+)"
  for v in ("\n" .. metrics):gmatch(pattern) do found[#found + 1] = tonumber(v) end
  return found
end

-- pids of the workers whose access log shows a request for `path`
local function serving_pids(host, path)
  local pids, n = {}, 0
  for _, line in ipairs(host:log_lines()) do
    if line.msg == "request" and line.path == path and line.pid and not pids[line.pid] then
      pids[line.pid] = true
      n = n + 1
    end
  end
  return n
end

describe("/metrics with WORKERS=2", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true, workers = 2 }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  it("counts every worker's requests in one series that never goes backwards", function()
    -- requests on fresh connections until both workers have served some
    local made = 0
    for _ = 1, 20 do
      for _, r in ipairs(h.concurrent(host.port, 20, "GET", "/hello")) do
        assert.are.equal(200, r.status)
        made = made + 1
      end
      if h.eventually(function() return serving_pids(host, "/hello") == 2 end, 0.5) then break end
    end
    assert.are.equal(2, serving_pids(host, "/hello"), "the kernel never gave the second worker a connection")

    local hello = 'todo_host_http_requests_total{route="/hello",method="GET",status="200"}'
    local scrapes = 'todo_host_http_requests_total{route="/metrics",method="GET",status="200"}'
    local last_scrapes = -1
    for i = 1, 40 do
      local status, metrics = host:request("GET", "/metrics")
      assert.are.equal(200, status)
      assert.are.same({ made }, sample(metrics, hello), "scrape " .. i .. " disagrees on the /hello count")
      assert.are.same({ made }, sample(metrics, 'todo_host_http_request_duration_seconds_count{route="/hello"}'))
      -- every earlier scrape is counted, by whichever worker answered it
      local seen = sample(metrics, scrapes)[1] or 0
      assert.are.equal(i - 1, seen, "scrape " .. i)
      assert.is_true(seen > last_scrapes)
      last_scrapes = seen
      -- gauges: each of the two workers, with its pid
      local workers = {}
      for pid in metrics:gmatch('todo_host_lua_memory_bytes{worker="(%d+)",bundle="hello"') do workers[pid] = true end
      local n = 0
      for _ in pairs(workers) do n = n + 1 end
      assert.are.equal(2, n)
    end
    -- the scrapes themselves were answered by both workers
    assert.are.equal(2, h.eventually(function()
      return serving_pids(host, "/metrics") == 2 and 2 or serving_pids(host, "/metrics")
    end))
  end)
end)

describe("/metrics of WebSocket connections with WORKERS=2", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/ws-echo" }, no_database = true, workers = 2 }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  it("shows the group's counters and every worker's gauges in every scrape", function()
    local N = 8
    local clients = {}
    for i = 1, N do
      clients[i] = wsc.open { port = host.port, path = "/echo", protocols = { "echo.v1" },
        token = h.token("metrics-" .. i), send = { "echo hi" }, seconds = 30 }
    end
    for i = 1, N do assert.are.same({ "open metrics-" .. i, "hi" }, clients[i]:wait_count(2)) end

    local function connections(metrics)
      local workers, open = 0, 0
      for _, n in metrics:gmatch('\ntodo_host_ws_connections{worker="(%d+)"} (%d+)') do
        workers, open = workers + 1, open + tonumber(n)
      end
      return workers, open
    end
    -- a worker publishes its gauges every second: wait out the one that has not yet
    assert.is_truthy(h.eventually(function()
      local _, metrics = host:request("GET", "/metrics")
      return select(2, connections(metrics)) == N
    end, 5))
    for i = 1, 30 do
      local _, metrics = host:request("GET", "/metrics")
      assert.are.same({ N }, sample(metrics, "todo_host_ws_accepted_total"), "scrape " .. i)
      assert.are.same({ N }, sample(metrics, 'todo_host_ws_messages_total{direction="in"}'), "scrape " .. i)
      assert.are.same({ 2 * N }, sample(metrics, 'todo_host_ws_messages_total{direction="out"}'), "scrape " .. i)
      -- the connections gauge: one sample per worker, adding up to every open connection
      local workers, open = connections(metrics)
      assert.are.equal(2, workers, "scrape " .. i)
      assert.are.equal(N, open, "scrape " .. i)
    end
    assert.are.equal(2, h.eventually(function()
      return serving_pids(host, "/metrics") == 2 and 2 or serving_pids(host, "/metrics")
    end), "the scrapes were not answered by both workers")
  end)
end)

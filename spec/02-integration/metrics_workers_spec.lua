-- /metrics with several workers (issue 19): one consistent exposition for the whole
-- process group, as Prometheus expects from one target. Whichever worker answers a
-- scrape, the counters are the group's totals: one sample per series (no per-worker
-- split), equal to the requests made across both workers, never going backwards
-- between scrapes. Gauges stay per worker, labelled with its pid, for every worker.
local h = require "spec.helpers"

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

-- bench/events_bench.lua: commit-to-handler latency and throughput of the bus with
-- BUS=postgres. Starts a host with the api bundle (bus tables, "history" group) and the
-- spec fixture consumer (groups fx-a and fx-b), drives RATE task events a second for
-- SECONDS through bench/events_load.lua (a separate todo-host process, one transaction
-- per event), then reads from fx_effects the latency of each handler run (handler start
-- minus the event's time, which is taken just before the commit).
-- Run: scripts/test-like environment (TEST_PG_ADMIN_URL), e.g.
--   PG=$(mktemp -d); URL=$(PG_THROWAWAY=1 scripts/pg start $PG)
--   TEST_PG_ADMIN_URL=${URL%/todo}/postgres build/todo-host script bench/events_bench.lua [RATE] [SECONDS]
local h = require "spec.helpers"

local rate, seconds = tonumber(arg and arg[1]) or 1000, tonumber(arg and arg[2]) or 10
local host = h.start { bundles = { "services/api", "spec/fixtures/events-consumer" },
  env = { LOG_LEVEL = "warn", ACCESS_LOG = "off", PG_POOL_SIZE = 16 } }
-- The host is stopped whatever happens below (a failed run must not leave it running).
local function main()
  local out = h.sh("DATABASE_URL=" .. h.sh_quote(host.database_url) .. " " .. h.sh_quote(h.host_bin)
    .. " script bench/events_load.lua " .. rate .. " " .. seconds .. " 50")
  print("load: " .. out)
  local function q(sql) return h.psql(sql, host.database_url) end
  h.eventually(function()
    return q([[SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c JOIN bus_partitions p
      USING (topic, part) WHERE c.grp IN ('fx-a', 'fx-b', 'history')]]) == "0"
  end, 60)
  print(q([[SELECT format('group %s: %s events, latency p50 %s ms, p99 %s ms, max %s ms, %s events/s', grp, count(*),
      round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2),
      round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 2),
      round(max(latency_ms)::numeric, 2),
      round(count(*) / extract(epoch FROM max(finished_at) - min(started_at))::numeric, 0))
    FROM fx_effects GROUP BY grp ORDER BY grp]]))
  print(q([[SELECT format('history: %s rows', count(*)) FROM task_history]]))
end
local ok, err = xpcall(main, debug.traceback)
host:stop()
if not ok then error(err, 0) end

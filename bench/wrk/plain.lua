-- wrk script: GET /bench/plain (no I/O in the handler). The request never changes, so
-- wrk sends its prebuilt request; this script only adds the BENCHRESULT line.
-- luacheck: std lua51, globals wrk setup done
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local bench = dofile(here .. "common.lua")
wrk.path = "/bench/plain"
setup = bench.setup
done = bench.done

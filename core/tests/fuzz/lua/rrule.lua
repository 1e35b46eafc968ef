-- Fuzz driver of the RRULE parser and engine (fuzz_rrule.c): see fuzz_recurrence.lua.
local run = require("fuzz_recurrence").run
return function(data) return run("rule", data) end

-- Fuzz driver of the recurrence phrase parser (fuzz_phrase.c): see fuzz_recurrence.lua.
local run = require("fuzz_recurrence").run
return function(data) return run("phrase", data) end

/* fuzz_rrule.c: libFuzzer target for the recurrence RRULE parser and what follows it
 * (the preview route, a task body, the next occurrence): the driver is
 * core/tests/fuzz/lua/rrule.lua (fuzz_recurrence.lua), the harness lua_target.h. Seeds in
 * core/tests/fuzz/corpus/rrule/. */
#define FUZZ_DRIVER "rrule"
#define FUZZ_BUNDLE "services/api"
#include "lua_target.h"

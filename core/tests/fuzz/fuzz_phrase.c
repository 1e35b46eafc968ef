/* fuzz_phrase.c: libFuzzer target for the recurrence phrase parser and what follows it
 * (the preview route, a task body, the next occurrence): the driver is
 * core/tests/fuzz/lua/phrase.lua (fuzz_recurrence.lua), the harness lua_target.h. Seeds in
 * core/tests/fuzz/corpus/phrase/. */
#define FUZZ_DRIVER "phrase"
#define FUZZ_BUNDLE "services/api"
#include "lua_target.h"

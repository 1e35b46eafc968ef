/* fuzz_task_json.c: libFuzzer target for JSON request bodies through the Task API's
 * validation (the host's JSON decoder, tasks.schema, tasks.bulk): the driver is
 * core/tests/fuzz/lua/task_json.lua, the harness lua_target.h. Seeds in
 * core/tests/fuzz/corpus/task_json/. */
#define FUZZ_DRIVER "task_json"
#define FUZZ_BUNDLE ""
#include "lua_target.h"

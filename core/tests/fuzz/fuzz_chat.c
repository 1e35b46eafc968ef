/* fuzz_chat.c: libFuzzer target for the chat assistant's parser and the tool calls it
 * makes (chat.parse, chat.server.exec over a repository double, chat.say, chat.context):
 * the driver is core/tests/fuzz/lua/chat.lua, the harness lua_target.h. Seeds in
 * core/tests/fuzz/corpus/chat/. */
#define FUZZ_DRIVER "chat"
#define FUZZ_BUNDLE "services/chat"
#include "lua_target.h"

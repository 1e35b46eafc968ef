-- luacheck settings: Lua 5.4 everywhere; busted globals in spec/.
std = "lua54"
max_line_length = 120
codes = true
files["spec/**/*.lua"] = { std = "+busted" }
files[".busted"] = { std = "lua54" }
exclude_files = { "build/**", "build-asan/**", ".data/**", "spec/fixtures/broken-syntax/**" }

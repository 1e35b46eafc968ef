-- The Lua fuzz targets' inputs as plain tests (core/tests/fuzz, `make fuzz`): every seed of
-- their corpora (core/tests/fuzz/corpus/<target>/, which holds each input a fuzzer found,
-- named regress-*) goes through the same driver as under libFuzzer (core/tests/fuzz/lua/),
-- here in the regular build; and each finding is asserted with the clear error it now gets.
-- The drivers install doubles (tasks.repo, websocket.log) in package.loaded: every case
-- puts package.loaded and package.path back as they were.
local recurrence = require "recurrence"
local rrule = require "recurrence.rrule"
local input = require "recurrence.input"

local TARGETS = { "rrule", "phrase", "task_json", "chat", "ws_message" }

local function files(dir)
  local out = {}
  local p = assert(io.popen("ls -1 '" .. dir .. "'"))
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Run fn with the module table and path restored afterwards.
local function isolated(fn)
  local saved_path, saved = package.path, {}
  for k, v in pairs(package.loaded) do saved[k] = v end
  package.path = package.path .. ";./services/?.lua;./core/tests/fuzz/lua/?.lua"
  local ok, err = pcall(fn)
  for k in pairs(package.loaded) do
    if saved[k] == nil then package.loaded[k] = nil end
  end
  for k, v in pairs(saved) do package.loaded[k] = v end
  package.path = saved_path
  if not ok then error(err, 0) end
end

describe("the fuzz corpora replayed through their drivers", function()
  for _, target in ipairs(TARGETS) do
    it(target .. ": every seed runs without an uncaught error", function()
      local dir = "core/tests/fuzz/corpus/" .. target
      local seeds = files(dir)
      assert.is_true(#seeds > 0, "no seeds in " .. dir)
      isolated(function()
        local driver = assert(loadfile("core/tests/fuzz/lua/" .. target .. ".lua"))()
        for _, name in ipairs(seeds) do
          local ok, err = pcall(driver, read(dir .. "/" .. name))
          assert(ok, target .. "/" .. name .. ": " .. tostring(err))
        end
      end)
    end)
  end
end)

describe("inputs the fuzzers found", function()
  it("rrule: a BYDAY ordinal too long for an integer is refused, not raised (regress-byday-huge-ordinal)", function()
    local text = "FREQ=MONTHLY;BYDAY=-" .. string.rep("1", 50) .. "FR;COUNT=5"
    local r, err = rrule.parse(text)
    assert.is_nil(r)
    assert.matches("BYDAY: ordinal in '%-1+FR' must be 1..53 or %-53..%-1", err)
    local rule, msg, code, field = input.rule(text)
    assert.is_nil(rule)
    assert.matches("^rule is not a valid RRULE: BYDAY: ordinal", msg)
    assert.same({ "invalid_field", "rule" }, { code, field })
  end)
end)

describe("phrase numbers too large for an integer (found while reading for the fuzzer)", function()
  it("an interval is refused instead of being dropped (which read as every 1)", function()
    local rule, err = recurrence.parse_phrase("every 99999999999999999999 days")
    assert.is_nil(rule)
    assert.matches("too large a number", err)
  end)

  it("a count must be a whole number: too large, a fraction or hex are refused", function()
    for _, n in ipairs { "99999999999999999999", "1.5", "0x10", "1e3" } do
      local rule, err = recurrence.parse_phrase("every day for " .. n .. " times")
      assert.is_nil(rule, n)
      assert.matches("expected 'for N times'", err)
    end
    assert.equal("FREQ=DAILY;COUNT=12", recurrence.parse_phrase("every day for 12 times"))
    assert.equal("FREQ=DAILY;COUNT=3", recurrence.parse_phrase("every day for three times"))
  end)
end)

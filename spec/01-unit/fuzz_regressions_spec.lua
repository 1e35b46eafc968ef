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

describe("chat: listing the tasks due on a day at the edge of the range (regress-due-on-*)", function()
  -- fuzz_chat: "what's due 9999-12-31" raised "time out of range" (the day ends at
  -- 10000-01-01 00:00 local, which RFC 3339 cannot write): POST /api/chat answered 500.
  local parse = require "chat.parse"
  local schema = require "tasks.schema"
  local NOW = 1777878000 -- 2026-05-04T07:00:00Z

  local function list_args(text, zone)
    local r = parse.parse(text, {}, NOW, zone, {})
    assert.equal("calls", r.kind, text)
    assert.equal("list_tasks", r.calls[1].name)
    return r.calls[1].arguments
  end

  it("bounds the last day at the end of the range, in every zone", function()
    for _, zone in ipairs { "Europe/Berlin", "Pacific/Kiritimati", "America/Los_Angeles", "UTC" } do
      local a = list_args("what's due 9999-12-31", zone)
      assert.truthy(schema.rfc3339(a.due_after), zone .. " " .. tostring(a.due_after))
      assert.truthy(schema.rfc3339(a.due_before), zone .. " " .. tostring(a.due_before))
      assert.matches("^9999%-12%-31T", a.due_after)
    end
    assert.equal("9999-12-31T23:00:00Z", list_args("what's due 9999-12-31", "Europe/Berlin").due_before)
    assert.equal("9999-12-31T23:59:59Z", list_args("what's due 9999-12-31", "UTC").due_before)
  end)

  it("gives a day before year 1 an empty range at the start of the range", function()
    local a = list_args("what is due on 1 jan 0000", "UTC")
    assert.same({ "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z" }, { a.due_after, a.due_before })
  end)
end)

describe("a rule listing every second of the day (regress-86400-times-a-day)", function()
  -- A hand-made input of fuzz_rrule (its memory ceiling caught it; mutations had not
  -- reached it): 465 bytes, under the API's 500, expanded one year into 31 million times.
  -- Before the limit it took 1.6 s of CPU and 514 MB in the regular build (a preview
  -- answered 500 "not enough memory"; the recurring-task consumer failed on it).
  local function list(from, to)
    local out = {}
    for i = from, to do out[#out + 1] = i end
    return table.concat(out, ",")
  end
  local H, M = list(0, 23), list(0, 59)

  it("is refused with a message naming the parts and the limit", function()
    local text = "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=" .. H .. ";BYMINUTE=" .. M .. ";BYSECOND=" .. M
    assert.is_true(#text <= input.RULE_MAX)
    local rule, msg, code, field = input.rule(text)
    assert.is_nil(rule)
    assert.equal("rule is not a valid RRULE: BYHOUR x BYMINUTE x BYSECOND: 86400 times a day, "
      .. "at most 1440 (once a minute)", msg)
    assert.same({ "invalid_field", "rule" }, { code, field })
  end)

  it("still accepts once a minute, and expands it quickly", function()
    local text = "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=" .. H .. ";BYMINUTE=" .. M
    assert.is_string(rrule.validate(text))
    local list_ = recurrence.expand(text, 1777885200, "Europe/Berlin", 100)
    assert.equal(100, #list_)
    assert.equal(60, list_[2] - list_[1])
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

-- `todo-host migrate BUNDLE_DIR...`: numeric order, each file once, a failing
-- file rolled back with its name in the message, a changed file warned about,
-- and two processes migrating at once (advisory lock).
-- Fixture bundles: spec/fixtures/migrations-{ok,fail,race}. The bundle name is
-- the directory's basename.
-- Needs DATABASE_URL in the host's environment; with only TEST_DATABASE_URL
-- (scripts/test) the file runs itself in a child todo-host that has it.

local HOST = os.getenv("TODO_HOST") or "build/todo-host"
local FIX = "spec/fixtures/"

local function shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- scripts/test exports DATABASE_URL (the pool reads it when it starts).
assert(os.getenv("DATABASE_URL"), "DATABASE_URL is not set: run the specs through scripts/test")

local pg = require "pg"

-- Start `todo-host migrate dirs...`; returns a function that waits and gives
-- (ok, stdout, stderr).
local function start_migrate(...)
  local err = os.tmpname()
  local args = {}
  for i, d in ipairs({ ... }) do args[i] = shq(d) end
  local p = assert(io.popen(shq(HOST) .. " migrate " .. table.concat(args, " ") .. " 2>" .. shq(err)))
  return function()
    local out = p:read("a")
    local ok = p:close()
    local f = assert(io.open(err))
    local stderr = f:read("a")
    f:close()
    os.remove(err)
    return ok, out, stderr
  end
end

local function migrate(...) return start_migrate(...)() end

local function q(sql, ...)
  local rows, err, state = pg.query(sql, ...)
  assert(rows, tostring(err) .. " " .. tostring(state))
  return rows
end

local function applied(bundle)
  local versions = {}
  local ok = q("SELECT to_regclass('todo_host_migrations') IS NOT NULL AS ok")[1].ok
  if not ok then return versions end
  for _, r in ipairs(q("SELECT version FROM todo_host_migrations WHERE bundle = $1 ORDER BY version", bundle)) do
    versions[#versions + 1] = r.version
  end
  return versions
end

local function reset(bundle, tables)
  if q("SELECT to_regclass('todo_host_migrations') IS NOT NULL AS ok")[1].ok then
    q("DELETE FROM todo_host_migrations WHERE bundle = $1", bundle)
  end
  for _, t in ipairs(tables) do q("DROP TABLE IF EXISTS " .. t) end -- fixed names, not input
end

local function exists(t)
  return q("SELECT to_regclass($1) IS NOT NULL AS ok", t)[1].ok
end

describe("todo-host migrate", function()
  it("applies files in numeric order, each once", function()
    reset("migrations-ok", { "mig_ok_log" })
    local ok, out, err = migrate(FIX .. "migrations-ok")
    assert(ok, err)
    assert.matches("applied 1_create.sql", out, 1, true)
    assert.matches("applied 10_alter.sql", out, 1, true)
    local steps = {}
    for _, r in ipairs(q("SELECT step FROM mig_ok_log ORDER BY n")) do steps[#steps + 1] = r.step end
    assert.are.same({ "1_create", "2_seed", "10_alter" }, steps)
    assert.are.same({ 1, 2, 10 }, applied("migrations-ok"))
    local rec = q("SELECT name, checksum, applied_at FROM todo_host_migrations"
      .. " WHERE bundle = 'migrations-ok' AND version = 10")[1]
    assert.are.equal("10_alter.sql", rec.name)
    assert.matches("^%x+$", rec.checksum)
    assert.matches("Z$", rec.applied_at)

    -- again: nothing to do, nothing applied twice
    ok, out, err = migrate(FIX .. "migrations-ok/")
    assert(ok, err)
    assert.are.equal("", out)
    assert.are.equal(3, q("SELECT count(*) AS n FROM mig_ok_log")[1].n)
  end)

  it("rolls back a failing file, names it, and exits non-zero", function()
    reset("migrations-fail", { "mig_fail_a", "mig_fail_b", "mig_fail_c" })
    local ok, out, err = migrate(FIX .. "migrations-fail")
    assert.is_falsy(ok)
    assert.matches("applied 001_good.sql", out, 1, true)
    assert.matches("migrate: spec/fixtures/migrations%-fail/migrations/002_bad%.sql: syntax error", err)
    assert.are.same({ 1 }, applied("migrations-fail"))
    assert.is_true(exists("mig_fail_a"))
    assert.is_false(exists("mig_fail_b")) -- rolled back with its file
    assert.is_false(exists("mig_fail_c")) -- never reached
    assert.are.equal(0, q("SELECT count(*) AS n FROM mig_fail_a")[1].n)
    reset("migrations-fail", { "mig_fail_a", "mig_fail_b", "mig_fail_c" })
  end)

  it("warns (and does not fail) when an applied file changed", function()
    local dir = os.tmpname()
    os.remove(dir)
    local bundle = dir:match("[^/]+$")
    assert(os.execute("mkdir -p " .. shq(dir .. "/migrations")))
    local function write(name, text)
      local f = assert(io.open(dir .. "/migrations/" .. name, "w"))
      f:write(text)
      f:close()
    end
    reset(bundle, {})
    write("001_x.sql", "SELECT 1;\n")
    local ok, _, err = migrate(dir)
    assert(ok, err)
    write("001_x.sql", "SELECT 2;\n")
    local out
    ok, out, err = migrate(dir)
    assert(ok, err)
    assert.are.equal("", out)
    assert.matches("001_x.sql changed after it was applied", err, 1, true)
    reset(bundle, {})
    os.execute("rm -rf " .. shq(dir))
  end)

  it("is safe when two processes migrate at once", function()
    reset("migrations-race", { "mig_race_log" })
    local a = start_migrate(FIX .. "migrations-race")
    local b = start_migrate(FIX .. "migrations-race")
    local ok_a, out_a, err_a = a()
    local ok_b, out_b, err_b = b()
    assert(ok_a, err_a)
    assert(ok_b, err_b)
    local _, n = (out_a .. out_b):gsub("applied", "")
    assert.are.equal(2, n)
    assert.are.same({ 1, 2 }, applied("migrations-race"))
    local steps = {}
    for _, r in ipairs(q("SELECT step FROM mig_race_log ORDER BY step")) do steps[#steps + 1] = r.step end
    assert.are.same({ "001", "002" }, steps)
  end)

  it("fails clearly when the database cannot be reached", function()
    local p = assert(io.popen("DATABASE_URL=postgresql://nobody@127.0.0.1:1/none " .. shq(HOST)
      .. " migrate " .. FIX .. "migrations-ok 2>&1"))
    local out = p:read("a")
    assert.is_falsy(p:close())
    assert.matches("migrate: cannot connect", out, 1, true)
  end)
end)

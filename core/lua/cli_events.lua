--- `todo-host events ...`: look after the event bus (BUS=postgres tables; DATABASE_URL,
-- else the database of `make run`: the cluster under .data/pg of the current directory or
-- of the repository holding this todo-host, as scripts/run starts it).
--   todo-host events dead-letters [GROUP]   list dead letters not yet replayed
--   todo-host events retry ID               replay one: its group's consumer runs the
--                                           handler again (idempotently) within a second
--   todo-host events lag                    events each group has still to process
-- Exit status: 0 done, 1 failure, 2 usage.
-- @module cli_events

local pg = require "pg"

local USAGE = [[usage:
  todo-host events dead-letters [GROUP]
  todo-host events retry ID
  todo-host events lag]]

local function fail(msg, code)
  io.stderr:write("todo-host events: ", msg, "\n")
  os.exit(code or 1)
end

local function sh_quote(v) return "'" .. tostring(v):gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- This executable's path (to run it again with DATABASE_URL set: the pool reads it once,
-- at start).
local function self_exe()
  local p = io.popen("readlink -f /proc/$PPID/exe 2>/dev/null") -- $PPID: the shell's parent, this process
  local exe = p and p:read("l")
  if p then p:close() end
  return exe
end

-- The database of `make run` (scripts/run: scripts/pg start .data/pg writes its port to
-- .data/pg/port; the database is "todo"): looked for in the current directory, then in
-- the repository of this executable (build/todo-host -> ..).
local function make_run_database(exe)
  local dirs = { "." }
  if exe then dirs[#dirs + 1] = exe:match("^(.*)/[^/]+/[^/]+$") end
  for _, dir in ipairs(dirs) do
    local port = (read_file(dir .. "/.data/pg/port") or ""):match("^%s*(%d+)%s*$")
    if port then return "postgresql://postgres@127.0.0.1:" .. port .. "/todo", dir .. "/.data/pg", port end
  end
  return nil
end

-- Without DATABASE_URL: run again against the database of `make run`, or say what is
-- missing. Returns only when DATABASE_URL is set.
local function ensure_database(args)
  local url = os.getenv("DATABASE_URL")
  if url and url ~= "" then return end
  local exe = self_exe()
  local found, dir, port = make_run_database(exe)
  if not found then
    local repo = exe and exe:match("^(.*)/[^/]+/[^/]+$") or "the repository"
    fail("no database: DATABASE_URL is not set, and there is no `make run` database here "
      .. "(.data/pg/port in the current directory or in " .. repo .. "). Run it where `make run` "
      .. "runs, or set DATABASE_URL.")
  end
  if not exe then fail("DATABASE_URL is not set, and this executable cannot be found to use " .. found) end
  local quoted = {}
  for _, a in ipairs(args) do quoted[#quoted + 1] = sh_quote(a) end
  local ok, how, code = os.execute("DATABASE_URL=" .. sh_quote(found) .. " TODO_EVENTS_DB_DIR="
    .. sh_quote(dir .. " (port " .. port .. ")") .. " exec " .. sh_quote(exe) .. " events "
    .. table.concat(quoted, " "))
  if ok then os.exit(0) end
  os.exit(how == "exit" and code or 1)
end

-- A failed query: with make run's database, say which one and what to check.
local function db_fail(err)
  local dir = os.getenv("TODO_EVENTS_DB_DIR")
  if dir and dir ~= "" then
    fail("cannot use the database of `make run` under " .. dir .. ": " .. tostring(err)
      .. " (is `make run` running? or set DATABASE_URL)")
  end
  fail(err)
end

local function dead_letters(group)
  local rows, err = pg.query([[SELECT id, grp, topic, event_id::text AS event_id, event->>'type' AS type,
      event->>'subject' AS subject, attempts, error, created_at, retry_requested_at
    FROM bus_dead_letters WHERE replayed_at IS NULL AND ($1::text IS NULL OR grp = $1)
    ORDER BY id]], group or pg.null)
  if not rows then db_fail(err) end
  if #rows == 0 then
    print("no dead letters")
    return
  end
  print(string.format("%-6s %-20s %-14s %-36s %-16s %-8s %s", "ID", "GROUP", "TOPIC", "EVENT", "TYPE",
    "ATTEMPTS", "ERROR"))
  for _, r in ipairs(rows) do
    local e = tostring(r.error):gsub("%s+", " ")
    if r.retry_requested_at ~= pg.null then e = "(retry requested) " .. e end
    print(string.format("%-6d %-20s %-14s %-36s %-16s %-8d %s", r.id, r.grp, r.topic, r.event_id,
      tostring(r.type), r.attempts, e:sub(1, 200)))
  end
end

local function retry(id)
  local n = math.tointeger(tonumber(id or ""))
  if not n then fail("retry needs a dead letter ID (see `todo-host events dead-letters`)", 2) end
  local rows, err = pg.query([[UPDATE bus_dead_letters SET retry_requested_at = now()
    WHERE id = $1 AND replayed_at IS NULL RETURNING grp, event_id::text AS event_id]], n)
  if not rows then db_fail(err) end
  if not rows[1] then fail("no dead letter " .. n .. " waiting (unknown, or already replayed)") end
  pg.query("SELECT pg_notify('todo_bus', 'retry')")
  -- wait (up to 10 s) for the group's consumer to replay it
  local timer = require "timer"
  for _ = 1, 100 do
    timer.sleep(0.1)
    local r = pg.query("SELECT replayed_at, retry_requested_at, error FROM bus_dead_letters WHERE id = $1", n)
    if r and r[1] and r[1].replayed_at ~= pg.null then
      print("replayed dead letter " .. n .. " (group " .. rows[1].grp .. ", event " .. rows[1].event_id .. ")")
      return
    end
    if r and r[1] and r[1].retry_requested_at == pg.null then
      fail("dead letter " .. n .. " failed again: " .. tostring(r[1].error))
    end
  end
  print("retry of dead letter " .. n .. " requested; no consumer of group " .. rows[1].grp
    .. " has replayed it yet (is it running?)")
end

local function lag()
  local rows, err = pg.query([[SELECT c.grp, c.topic, sum(p.last_seq - c.seq)::bigint AS behind,
      sum(c.parked)::bigint AS parked, max(c.last_error) AS last_error,
      (SELECT b.last_error FROM bus_parked b WHERE b.grp = c.grp AND b.topic = c.topic
          AND b.last_error IS NOT NULL ORDER BY b.parked_at DESC LIMIT 1) AS parked_error
    FROM bus_cursors c JOIN bus_partitions p ON p.topic = c.topic AND p.part = c.part
    GROUP BY c.grp, c.topic ORDER BY c.grp, c.topic]])
  if not rows then db_fail(err) end
  for _, r in ipairs(rows) do
    local failing = r.parked_error ~= pg.null and r.parked_error or r.last_error
    print(string.format("%-30s %-14s behind %-8d parked %-6d %s", r.grp, r.topic, r.behind, r.parked,
      failing ~= pg.null and ("failing: " .. tostring(failing)) or ""))
  end
  if #rows == 0 then print("no subscription groups yet") end
end

return function(cmd, a1, ...)
  if cmd == "dead-letters" or cmd == "retry" or cmd == "lag" then ensure_database({ cmd, a1, ... }) end
  if cmd == "dead-letters" then
    dead_letters(a1)
  elseif cmd == "retry" then
    retry(a1)
  elseif cmd == "lag" then
    lag()
  else
    io.stderr:write(USAGE, "\n")
    os.exit(cmd and 2 or 0)
  end
end

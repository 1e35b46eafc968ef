--- PostgreSQL access for bundles: pooled, non-blocking, parameterised queries.
--
-- Every query takes its values as `$1`, `$2` ... parameters; there is no way to
-- splice a value into SQL text. A query waits without blocking the loop: the
-- calling coroutine yields until the answer arrives.
--
-- Results are arrays of rows (column name -> value), typed by column type:
-- int2/int4/int8/oid -> integer; float4/float8 -> float; numeric -> integer when
-- integral and it fits, else float; bool -> boolean; json/jsonb -> decoded
-- (arrays marked as JSON arrays); timestamptz -> RFC 3339 UTC string ending in
-- "Z" with the fraction PostgreSQL prints (trailing zeros dropped, e.g.
-- "2026-11-25T18:37:20.1234Z", no fraction when zero); one-dimensional (or
-- nested) arrays of those types -> Lua arrays; date, timestamp, text, uuid and
-- everything else -> string; SQL NULL -> `pg.null` (never nil, never false).
--
-- Failures return `nil, message, sqlstate` (e.g. `nil, "duplicate key value
-- violates unique constraint \"t_pkey\"", "23505"`); "pool timeout" has no
-- sqlstate; a connection that died answers `nil, "connection lost", "08006"`
-- once and is replaced; while the server refuses connections, attempts back off
-- (50 ms doubling to 2 s) and waiting queries fail with `"connection failed: ...",
-- "08001"` or "pool timeout". Wrong arguments raise.
-- @module pg

local core = require "pg.core"
local json = require "json"

local pg = {}

--- The SQL NULL value (the same value as `json.null`).
pg.null = core.null

local NULL = core.null
local select, type, getmetatable, setmetatable = select, type, getmetatable, setmetatable
local tostring, format = tostring, string.format
local concat, pack, unpack = table.concat, table.pack, table.unpack
local running = coroutine.running

--- Whether a value is SQL NULL (`pg.null`).
-- @param v any value
-- @treturn boolean
function pg.is_null(v)
  return v == NULL
end

local array_mt = { __name = "pg.array" }

local function literal(t, depth)
  if depth > 6 then error("pg.array: nested too deeply", depth + 2) end
  local out = {}
  for i = 1, #t do
    local v = t[i]
    local tv = type(v)
    if v == NULL then
      out[i] = "NULL"
    elseif tv == "string" then
      out[i] = '"' .. v:gsub('[\\"]', "\\%0") .. '"'
    elseif tv == "boolean" then
      out[i] = v and "t" or "f"
    elseif math.type(v) == "integer" then
      out[i] = tostring(v)
    elseif tv == "number" then
      out[i] = v ~= v and "NaN" or v == math.huge and "Infinity" or v == -math.huge and "-Infinity"
        or format("%.17g", v)
    elseif tv == "table" then
      out[i] = literal(v, depth + 1)
    else
      error("pg.array: element " .. i .. " is a " .. tv, depth + 2)
    end
  end
  return "{" .. concat(out, ",") .. "}"
end

--- Mark a Lua array as a PostgreSQL array parameter.
-- Elements may be strings, numbers, booleans, `pg.null` or nested arrays; strings
-- are always quoted, so commas, braces, quotes, backslashes and the word NULL
-- are plain data. Use with a cast when the type is not implied:
-- `pg.query("SELECT $1::text[] AS tags", pg.array{"a", "b"})`.
-- The table is copied, not modified.
-- @tparam table t a sequence
-- @treturn table the parameter value
function pg.array(t)
  if type(t) ~= "table" then error("pg.array: table expected, got " .. type(t), 2) end
  return setmetatable({ literal = literal(t, 1) }, array_mt)
end

-- Turn table parameters into text: pg.array -> array literal, other tables -> JSON.
local function encode_params(...)
  local n = select("#", ...)
  for i = 1, n do
    if type((select(i, ...))) == "table" then
      local args = pack(...)
      for j = i, n do
        local v = args[j]
        if type(v) == "table" then
          if getmetatable(v) == array_mt then
            args[j] = v.literal
          else
            args[j] = json.encode(v)
          end
        end
      end
      return unpack(args, 1, n)
    end
  end
  return ...
end

local function run(conn, sql, ...)
  local ok, err, state, constraint = conn:query(sql, encode_params(...))
  if not ok then return nil, err, state, constraint end
  return conn:rows()
end

-- Coroutines inside pg.tx -> number of open transactions (for the deadlock check).
local open_tx = setmetatable({}, { __mode = "k" })

--- Run one query on a shared, pipelined connection: queries from many coroutines
-- go out together on a few connections, each with its own sync point (an error
-- in one never affects another), and their answers come back in order.
-- Parameters: nil or `pg.null` -> NULL; booleans; integers; floats (17
-- significant digits); strings; `pg.array(t)`; any other table -> JSON text
-- (cast it: `$1::jsonb`).
-- Inside `pg.tx` this runs outside the transaction, on another connection;
-- when that would wait for the transaction's own connection (pool exhausted by
-- this coroutine) it raises instead of deadlocking: use `tx:query`.
-- @tparam string sql SQL with `$n` placeholders
-- @param ... parameters
-- @treturn[1] table rows (array of column name -> value tables)
-- @treturn[1] ?integer rows affected (nil for commands without a count)
-- @treturn[2] nil
-- @treturn[2] string error message
-- @treturn[2] ?string SQLSTATE
-- @treturn[2] ?string the constraint violated (PG_DIAG_CONSTRAINT_NAME), if any
function pg.query(sql, ...)
  if type(sql) ~= "string" then error("pg.query: sql must be a string", 2) end
  local mine = open_tx[running()]
  if mine then
    local st = core.stats()
    if st.idle == 0 and mine >= st.size then
      error("pg.query inside pg.tx would wait for the transaction's own connection"
        .. " (pool size " .. st.size .. "); use tx:query", 2)
    end
  end
  local r, err, state = core.query(sql, encode_params(...))
  if not r then return nil, err, state end
  r:wait()
  return r:rows()
end

local tx_methods = {}
local tx_mt = { __index = tx_methods, __name = "pg.tx" }

--- Run a query inside the transaction. Same contract as `pg.query`. After an
-- error the transaction is aborted: later calls return that error again
-- without contacting the server, and `pg.tx` rolls back.
-- @tparam string sql SQL with `$n` placeholders
-- @param ... parameters
-- @return rows, affected | nil, message, sqlstate[, constraint]
function tx_methods:query(sql, ...)
  if getmetatable(self) ~= tx_mt then error("tx:query: call it with ':'", 2) end
  if type(sql) ~= "string" then error("tx:query: sql must be a string", 2) end
  if self.finished or self.committed then error("tx:query: the transaction is already finished", 2) end
  if self.err then return nil, self.err, self.sqlstate, self.constraint end
  if self.commit_armed then self.conn:commit_next() end
  local rows, a, b, k = run(self.conn, sql, ...)
  if rows == nil then
    self.err, self.sqlstate, self.constraint = a, b, k
  elseif self.commit_armed then
    self.committed = true
  end
  self.commit_armed = nil
  return rows, a, b, k
end

--- Make the next `tx:query` the transaction's last: COMMIT goes out with it, in the
-- same round trip, so the transaction's locks are released as soon as PostgreSQL has
-- run it (no round trip back to the host in between). A failure of that query or of the
-- COMMIT is that query's failure, and then nothing was committed. After it succeeds the
-- transaction is committed: further queries raise, and `fn` must return success.
function tx_methods:commit_with_next()
  if getmetatable(self) ~= tx_mt then error("tx:commit_with_next: call it with ':'", 2) end
  if self.finished or self.committed then error("tx:commit_with_next: the transaction is already finished", 2) end
  self.commit_armed = true
end

local function rollback(conn)
  -- BEGIN not sent yet (no statement ran): nothing to undo.
  if conn:begin(false) then return end
  -- A failed ROLLBACK leaves the connection outside idle: release drops it.
  run(conn, "ROLLBACK")
end

--- Run `fn(tx)` inside a transaction on one connection.
-- Commits when fn returns normally, and returns fn's results.
-- Rolls back and re-raises when fn raises.
-- Rolls back and returns fn's results when fn returns nil or false followed
-- by an error value (`return nil, "not found"`), or when one of its queries
-- failed (then returns `nil, message, sqlstate[, constraint]` of that failure).
-- BEGIN goes out with the first statement (one round trip less; no statement,
-- no BEGIN nor COMMIT): a failed BEGIN is that statement's failure. A failed
-- COMMIT returns `nil, message, sqlstate[, constraint]`.
-- @tparam function fn receives the transaction object `tx`
-- @return fn's results | nil, message, sqlstate
function pg.tx(fn)
  if type(fn) ~= "function" then error("pg.tx: function expected, got " .. type(fn), 2) end
  local conn, err, state = core.acquire()
  if not conn then return nil, err, state end
  local c <close> = conn
  c:begin() -- sent with the first statement, in the same round trip
  local tx = setmetatable({ conn = c }, tx_mt)
  local co = running()
  open_tx[co] = (open_tx[co] or 0) + 1
  local res = pack(pcall(fn, tx))
  local left = open_tx[co] - 1
  open_tx[co] = left > 0 and left or nil
  tx.finished = true
  if not res[1] then
    rollback(c)
    error(res[2], 0)
  end
  if tx.committed then -- COMMIT went out with the last query (tx:commit_with_next)
    if not res[2] and res.n >= 3 and res[3] ~= nil then
      error("pg.tx: fn failed after its transaction committed (tx:commit_with_next): "
        .. tostring(res[3]), 0)
    end
    return unpack(res, 2, res.n)
  end
  if not res[2] and res.n >= 3 and res[3] ~= nil then
    rollback(c)
    return unpack(res, 2, res.n)
  end
  if tx.err then
    -- COMMIT of an aborted transaction only rolls back: report the failure.
    rollback(c)
    return nil, tx.err, tx.sqlstate, tx.constraint
  end
  if not c:begin(false) then -- else no statement ran: nothing to commit
    local ok, e, s, k = run(c, "COMMIT")
    if not ok then return nil, e, s, k end
  end
  return unpack(res, 2, res.n)
end

--- Pool gauges of this worker.
-- @treturn table `{in_use=, idle=, waiting=, size=, connecting=, shared=}`
function pg.stats()
  return core.stats()
end

return pg

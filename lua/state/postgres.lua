--- The PostgreSQL backend of `state` (one machine, BUS=postgres): the table
-- `state_entries` (services/api/migrations/040_state.sql). The etag is a counter
-- bumped by every write, compared (first-write only, as Dapr does) in the statement itself, so a concurrent writer
-- can never slip in between the check and the write. Expired rows read as absent and
-- are overwritten like absent ones; `sweep` deletes them.
-- @module state.postgres
local pg = require "pg"
local json = require "json"

local M = { name = "postgres" }

local LIVE = "(expires_at IS NULL OR expires_at > now())"

local function fail(msg, code)
  if code == "22P02" or code == "22003" then return nil, "state: invalid etag", "invalid" end
  return nil, "state store: " .. tostring(msg), "unavailable"
end

local function etag_number(etag)
  if etag == nil then return nil end
  local n = etag:match("^%d+$") and math.tointeger(tonumber(etag))
  return n
end

local function ttl_arg(ttl) return ttl and tostring(ttl) or pg.null end

function M.get(key)
  local rows, msg, code = pg.query("SELECT value, etag FROM state_entries WHERE key = $1 AND " .. LIVE, key)
  if not rows then return fail(msg, code) end
  if rows[1] == nil then return nil end
  return rows[1].value, tostring(rows[1].etag)
end

function M.set(key, value, o)
  local v = json.encode(value)
  local rows, msg, code
  if o.etag and o.concurrency == "first-write" then
    local n = etag_number(o.etag)
    if not n then return nil, "state: etag mismatch", "conflict" end
    rows, msg, code = pg.query("UPDATE state_entries SET value = $2::jsonb, etag = etag + 1," ..
      " expires_at = now() + make_interval(secs => $4::int) WHERE key = $1 AND etag = $3 AND " .. LIVE ..
      " RETURNING etag", key, v, n, ttl_arg(o.ttl))
  elseif o.concurrency == "first-write" then
    rows, msg, code = pg.query("INSERT INTO state_entries (key, value, expires_at)" ..
      " VALUES ($1, $2::jsonb, now() + make_interval(secs => $3::int))" ..
      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, etag = state_entries.etag + 1," ..
      " expires_at = EXCLUDED.expires_at WHERE state_entries.expires_at <= now() RETURNING etag",
      key, v, ttl_arg(o.ttl))
  else
    rows, msg, code = pg.query("INSERT INTO state_entries (key, value, expires_at)" ..
      " VALUES ($1, $2::jsonb, now() + make_interval(secs => $3::int))" ..
      " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, etag = state_entries.etag + 1," ..
      " expires_at = EXCLUDED.expires_at RETURNING etag", key, v, ttl_arg(o.ttl))
  end
  if not rows then return fail(msg, code) end
  if rows[1] == nil then return nil, "state: etag mismatch", "conflict" end
  return tostring(rows[1].etag)
end

function M.delete(key, o)
  local rows, msg, code
  if o.etag then
    local n = etag_number(o.etag)
    if not n then return nil, "state: etag mismatch", "conflict" end
    rows, msg, code = pg.query("DELETE FROM state_entries WHERE key = $1 AND etag = $2 AND " .. LIVE ..
      " RETURNING 1 AS gone", key, n)
    if rows and rows[1] == nil then return nil, "state: etag mismatch", "conflict" end
  else
    rows, msg, code = pg.query("DELETE FROM state_entries WHERE key = $1", key)
  end
  if not rows then return fail(msg, code) end
  return true
end

-- One statement: create the counter at 1 (or restart an expired one), else add one.
function M.incr(key, ttl)
  local rows, msg, code = pg.query("INSERT INTO state_entries (key, value, expires_at)" ..
    " VALUES ($1, '1', now() + make_interval(secs => $2::int))" ..
    " ON CONFLICT (key) DO UPDATE SET etag = state_entries.etag + 1," ..
    " value = CASE WHEN state_entries.expires_at <= now() THEN '1'::jsonb" ..
    " ELSE to_jsonb(state_entries.value::text::bigint + 1) END," ..
    " expires_at = CASE WHEN state_entries.expires_at <= now() THEN EXCLUDED.expires_at" ..
    " ELSE state_entries.expires_at END RETURNING value", key, tostring(ttl))
  if not rows then return fail(msg, code) end
  return math.tointeger(rows[1].value)
end

--- Delete expired entries.
-- @treturn integer how many; or nil, message
function M.sweep()
  local rows, msg = pg.query("DELETE FROM state_entries WHERE expires_at <= now() RETURNING 1 AS gone")
  if not rows then return nil, msg end
  return #rows
end

return M

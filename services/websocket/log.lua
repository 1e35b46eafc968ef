--- The per-user event log (tables ws_events, ws_log_users; migrations/001_ws_log.sql):
-- the only module that writes SQL for them. The log is filled by a trigger in the
-- publishing transaction; this module reads it (hello, resume, the live event ids) and
-- prunes it (WS_RESUME_WINDOW_SECONDS).
-- @module websocket.log

local pg = require "pg"
local batch = require "batch"

local M = {}

--- Resume window in seconds (WS_RESUME_WINDOW_SECONDS, default 7 days).
M.WINDOW = math.tointeger(tonumber(os.getenv("WS_RESUME_WINDOW_SECONDS") or "")) or 7 * 24 * 3600

--- Rows a replay reads per query.
M.PAGE = 500

-- Positions of the users asked for in one loop turn, in one statement: a reconnect
-- storm (every client of a restarted replica at once) costs a few queries, not one per
-- connection.
local positions = batch.new(function(users)
  local rows, err = pg.query("SELECT user_id, last_id, pruned_through FROM ws_log_users WHERE user_id = ANY($1)",
    pg.array(users))
  if not rows then return nil, err end
  local by = {}
  for _, r in ipairs(rows) do by[r.user_id] = r end
  local out = {}
  for i, u in ipairs(users) do
    local r = by[u]
    out[i] = r and { r.last_id, r.pruned_through } or { 0, 0 }
  end
  return out
end, { max = 500 })

--- The user's newest event id and the newest pruned one.
-- @tparam string user
-- @return newest, pruned_through (0, 0 for a user with no events) | nil, message
function M.position(user)
  local r, err = positions(user)
  if not r then return nil, err end
  return r[1], r[2]
end

--- Events of `user` with after < event_id <= upto, in order, at most `limit`.
-- @return rows {event_id, type, data} | nil, message
function M.page(user, after, upto, limit)
  return pg.query([[SELECT event_id, type, data FROM ws_events
    WHERE user_id = $1 AND event_id > $2 AND event_id <= $3 ORDER BY event_id LIMIT $4]],
    user, after, upto, limit or M.PAGE)
end

--- The log ids of CloudEvents, by their ids (the live fan-out).
-- @param q `pg` or a transaction (anything with the `query` contract)
-- @tparam table ce_ids CloudEvent ids
-- @return map ce_id -> {user =, event_id =} | nil, message
function M.ids(q, ce_ids)
  local query = q == pg and pg.query or function(...) return q:query(...) end
  local rows, err = query("SELECT ce_id::text AS ce_id, user_id, event_id FROM ws_events WHERE ce_id = ANY($1::uuid[])",
    pg.array(ce_ids))
  if not rows then return nil, err end
  local out = {}
  for _, r in ipairs(rows) do out[r.ce_id] = { user = r.user_id, event_id = r.event_id } end
  return out
end

--- Delete events older than the window; remember per user the newest one deleted.
-- One process at a time (an advisory lock); returns the number deleted.
-- @return integer | nil, message
function M.prune()
  local deleted = 0
  local ok, err = pg.tx(function(tx)
    local got, e = tx:query("SELECT pg_try_advisory_xact_lock(hashtext('ws_log_prune')) AS mine")
    if not got then return nil, e end
    if not got[1].mine then return true end
    local rows, e2 = tx:query([[
      WITH d AS (DELETE FROM ws_events WHERE at < now() - make_interval(secs => $1)
                 RETURNING user_id, event_id)
      INSERT INTO ws_log_users AS u (user_id, last_id, pruned_through)
      SELECT user_id, max(event_id), max(event_id) FROM d GROUP BY user_id ORDER BY user_id
      ON CONFLICT (user_id) DO UPDATE SET pruned_through = greatest(u.pruned_through, excluded.pruned_through)
      RETURNING user_id]], M.WINDOW)
    if not rows then return nil, e2 end
    deleted = #rows
    return true
  end)
  if not ok then return nil, err end
  return deleted
end

return M

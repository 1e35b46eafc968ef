--- Helpers of the notification specs: start api + notification on one database, make
-- tasks with reminders, read notifications straight from the database, and format
-- instants. Built on spec.helpers.
local h = require "spec.helpers"
local socket = require "socket"
local json = require "json"

local M = {}

M.BUNDLES = { "services/api", "services/notification" }

--- RFC 3339 UTC text of an epoch (seconds, may be fractional: truncated).
function M.iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

--- Start a host with both bundles (opts as for h.start; env merged).
function M.start(opts)
  opts = opts or {}
  local env = { NOTIFY_WEBHOOK_DEV = "1", BUS_POLL_SECONDS = "0.2" }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  opts.env = env
  opts.bundles = opts.bundles or M.BUNDLES
  return h.start(opts)
end

--- Create a task (asserting 201); returns it.
function M.task(host, user, body)
  local status, t = host:request("POST", "/api/tasks", { token = h.token(user), body = body })
  assert(status == 201, "create failed: " .. tostring(status) .. " " .. require("json").encode(t))
  return t
end

--- Rows of the notifications table, as "task_id|remind_at|late" lines (psql output).
function M.rows(host, where)
  return h.psql("SELECT task_id, to_char(remind_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), late"
    .. " FROM notifications" .. (where and (" WHERE " .. where) or "") .. " ORDER BY remind_at, task_id",
    host.database_url)
end

--- Count of notifications (optionally of one task).
function M.count(host, task_id)
  return tonumber(h.psql("SELECT count(*) FROM notifications" ..
    (task_id and (" WHERE task_id = '" .. task_id .. "'") or ""), host.database_url))
end

--- Wait until the notification consumer group has read every task event.
function M.caught_up(host, timeout)
  return h.eventually(function()
    return h.psql([[SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c
      JOIN bus_partitions p USING (topic, part) WHERE c.grp = 'notification']], host.database_url) == "0"
  end, timeout or 10)
end

--- A webhook receiver in its own process (spec/support/webhook_receiver.py) answering
-- by `plan`; `url`, `port`, `know(secret)` (then it verifies signatures), `requests()`,
-- `stop()`.
function M.receiver(plan)
  local port = h.free_port()
  local log = os.tmpname()
  local secret_file = os.tmpname()
  os.remove(secret_file)
  local pid = h.sh("python3 spec/support/webhook_receiver.py " .. port .. " " .. log .. " " .. h.sh_quote(plan)
    .. " " .. secret_file .. " >/dev/null 2>&1 & echo $!")
  local r = { port = port, url = "http://127.0.0.1:" .. port .. "/hook" }
  -- hand the receiver the secret: it then verifies every request as docs/api.md shows
  function r.know(secret)
    local f = assert(io.open(secret_file, "w"))
    f:write(secret)
    f:close()
  end
  function r.requests()
    local out = {}
    local f = io.open(log)
    if not f then return out end
    for line in f:lines() do out[#out + 1] = json.decode(line) end
    f:close()
    return out
  end
  function r.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(log)
    os.remove(secret_file)
  end
  -- wait until it accepts connections
  assert(h.eventually(function()
    local s = require("socket").tcp()
    local ok = s:connect("127.0.0.1", port)
    s:close()
    return ok
  end, 5), "receiver did not start")
  return r
end

--- Now, as a float.
M.now = socket.gettime

return M

--- Test harness for the integration specs: databases, todo-host processes and
-- HTTP requests. Specs run inside todo-host (`todo-host script busted`), so the
-- host's primitives are available here too; HTTP uses LuaSocket (blocking is
-- fine: the host under test is another process).
--
-- scripts/test starts one PostgreSQL cluster per run and exports
-- TEST_DATABASE_URL / TEST_PG_ADMIN_URL; every `start` gets a fresh database.
-- @module spec.helpers
local socket = require "socket"
local json = require "json"

local M = {}

M.host_bin = os.getenv("TODO_HOST") or "build/todo-host"
M.dev_secret = "spec-dev-secret-not-for-production"
M.admin_url = os.getenv("TEST_PG_ADMIN_URL")
local db_counter = 0

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.sh_quote = sh_quote

--- Run a shell command; returns its stdout (trimmed) and whether it succeeded.
function M.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  return (out:gsub("%s+$", "")), ok
end

--- Call fn until it returns a truthy value or `timeout` seconds pass; returns
-- its last result. For effects that land asynchronously (log lines, events).
function M.eventually(fn, timeout)
  local deadline = socket.gettime() + (timeout or 5)
  repeat
    local v = fn()
    if v then return v end
    M.sleep(0.05)
  until socket.gettime() > deadline
  return fn()
end

--- Sleep without blocking other work (host timer).
function M.sleep(seconds)
  require("timer").sleep(seconds)
end

--- A name no other run or spec has used: `prefix-<time>-<random>` (user ids, titles).
function M.uid(prefix) return prefix .. "-" .. os.time() .. "-" .. math.random(1, 1e9) end

--- Wait for the start of the next second, so a burst falls in one rate-limit window.
function M.next_second()
  local now = socket.gettime()
  M.sleep(math.ceil(now) - now + 0.02)
end

--- A free TCP port on the loopback interface.
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- Run SQL through psql against the admin database (or `url`); returns output.
function M.psql(sql, url)
  local out, ok = M.sh("psql -X -At -v ON_ERROR_STOP=1 " .. sh_quote(url or M.admin_url) ..
    " -c " .. sh_quote(sql))
  assert(ok, "psql failed: " .. out)
  return out
end

--- One psql process kept open against `url`, for specs that query after every request
-- (starting psql costs tens of milliseconds; a query on the open session well under
-- one). `session.query(sql)` (one statement) returns the output like M.psql and raises
-- on an error or after 30 s; `session.close()` ends it (collecting an unclosed session
-- ends it too).
-- psql reads a FIFO and runs in the background, not under io.popen: Lua cannot mark a
-- popen pipe close-on-exec, so every host started later inherited its write end, psql
-- never saw EOF and the pclose of a collected session waited for ever. Here nothing
-- waits for psql: close() sends \q, closes the FIFO and kills psql by its pid.
function M.psql_session(url)
  local dir = M.sh("mktemp -d /tmp/psql-session.XXXXXX")
  local fifo, out, pidfile = dir .. "/in", dir .. "/out", dir .. "/pid"
  assert(select(2, M.sh("mkfifo " .. sh_quote(fifo))), "mkfifo failed")
  assert(io.open(out, "w")):close()       -- exists before psql's redirection makes it
  os.execute("sh -c " .. sh_quote("exec stdbuf -oL psql -X -At -q " .. sh_quote(url) .. " <" .. sh_quote(fifo)
    .. " >" .. sh_quote(out) .. " 2>&1 & echo $! >" .. sh_quote(pidfile)) .. " </dev/null >/dev/null 2>&1")
  local w = assert(io.open(fifo, "w"))   -- returns once psql has opened its end
  local pf = assert(io.open(pidfile))
  local pid = tonumber(pf:read("a"))
  pf:close()
  local r = assert(io.open(out, "r"))
  local n, pending = 0, ""
  local session = { pid = pid }
  function session.query(sql)
    n = n + 1
    local mark = "--end of query " .. n .. "--"
    w:write(sql, ";\n\\echo ", mark, "\n")
    w:flush()
    local deadline = socket.gettime() + 30
    while true do
      pending = pending .. r:read("a")
      local s, e = pending:find(mark .. "\n", 1, true)
      if s then
        local result = pending:sub(1, s - 1)
        pending = pending:sub(e + 1)
        if result:find("ERROR:", 1, true) then error("psql session: " .. result, 2) end
        return (result:gsub("%s+$", ""))
      end
      if socket.gettime() > deadline then error("psql session: no answer to " .. sql .. ":\n" .. pending, 2) end
      M.sleep(0.001)
    end
  end
  local closed = false
  function session.close()
    if closed then return end
    closed = true
    pcall(function() w:write("\\q\n"); w:flush() end)
    pcall(io.close, w)
    pcall(io.close, r)
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    os.execute("rm -rf " .. sh_quote(dir))
  end
  return setmetatable(session, { __gc = session.close })
end

--- Create a new empty database; returns its URL.
function M.new_database()
  assert(M.admin_url, "TEST_PG_ADMIN_URL is not set: run the specs through scripts/test")
  db_counter = db_counter + 1
  local name = string.format("spec_%d_%d_%d", os.time(), math.random(1e6), db_counter)
  M.psql("create database " .. name)
  return (M.admin_url:gsub("/postgres$", "/" .. name)), name
end

local Host = {}
Host.__index = Host

--- Start a todo-host serving `opts.bundles` on a free port against a fresh
-- database (migrated first). opts.env adds environment variables; opts.args
-- adds command-line flags; opts.database_url reuses a database.
-- @treturn table a handle with port, url(path), log(), stop(), kill()
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({}, Host)
  self.port = opts.port or M.free_port()
  self.database_url = opts.database_url or (opts.no_database and "" or M.new_database())
  -- under TODO_SPEC_TMP when scripts/test sets it: scripts/check-logs reads every host's
  -- log of the run there
  self.dir = M.sh("mktemp -d " .. sh_quote((os.getenv("TODO_SPEC_TMP") or "/tmp") .. "/todo-spec-host.XXXXXX"))
  self.logfile = self.dir .. "/host.log"
  local env = {
    PORT = self.port, WORKERS = opts.workers or 1, DATABASE_URL = self.database_url,
    AUTH_DEV_SECRET = M.dev_secret, LOG_LEVEL = "info",
  }
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local parts = {}
  for k, v in pairs(env) do
    if v ~= false then parts[#parts + 1] = k .. "=" .. sh_quote(v) end
  end
  self.env = table.concat(parts, " ")
  local bundles = {}
  for _, b in ipairs(opts.bundles or {}) do bundles[#bundles + 1] = sh_quote(b) end
  self.bundles = table.concat(bundles, " ")
  if self.database_url ~= "" and not opts.skip_migrate then
    local out, ok = M.sh("env " .. self.env .. " " .. sh_quote(M.host_bin) .. " migrate " .. self.bundles)
    assert(ok, "migrate failed: " .. out)
  end
  self:spawn(opts.args)
  if opts.wait ~= false then assert(self:wait_ready(opts.timeout or 15), "host did not start:\n" .. self:log()) end
  return self
end

--- (Re)start the process of this handle.
function Host:spawn(args)
  -- a respawned handle is running again: the next stop() must stop it (a stop() before
  -- the respawn left `stopped` set, so the spec's teardown stop() returned at once and
  -- left `todo-host run` processes behind after the suite)
  self.stopped, self.stopped_code = nil, nil
  local cmd = string.format(
    "env %s %s run %s %s >>%s 2>&1 & echo $! >%s/pid; wait $!; echo $? >%s/exit",
    self.env, sh_quote(M.host_bin), args or "", self.bundles, sh_quote(self.logfile),
    self.dir, self.dir)
  os.remove(self.dir .. "/exit")
  os.execute("sh -c " .. sh_quote(cmd) .. " >/dev/null 2>&1 &")
  for _ = 1, 200 do
    local f = io.open(self.dir .. "/pid")
    if f then
      self.pid = tonumber(f:read("a"))
      f:close()
      if self.pid then break end
    end
    M.sleep(0.01)
  end
  os.remove(self.dir .. "/pid")
end

--- Wait until GET /healthz answers 200 (or the process exits).
function Host:wait_ready(timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    local status = M.request("GET", "/healthz", { port = self.port, timeout = 1 })
    if status == 200 then return true end
    if self:exit_code() then return false end
    M.sleep(0.05)
  end
  return false
end

--- The exit code once the process ended, else nil.
function Host:exit_code()
  local f = io.open(self.dir .. "/exit")
  if not f then return nil end
  local code = tonumber(f:read("a"))
  f:close()
  return code
end

--- Everything the process logged so far.
function Host:log()
  local f = io.open(self.logfile)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- Decoded JSON log lines (lines that are not JSON are returned as {raw=line}).
function Host:log_lines()
  local lines = {}
  for line in self:log():gmatch("[^\n]+") do
    lines[#lines + 1] = json.decode(line) or { raw = line }
  end
  return lines
end

--- Send a signal and wait for the process to exit; returns the exit code.
function Host:signal(sig, timeout)
  if self.pid then os.execute("kill -" .. sig .. " " .. self.pid .. " 2>/dev/null") end
  local deadline = socket.gettime() + (timeout or 15)
  while socket.gettime() < deadline do
    local code = self:exit_code()
    if code then return code end
    M.sleep(0.02)
  end
  return nil
end

--- Sanitizer reports (AddressSanitizer, LeakSanitizer, UBSan) in the log, if any.
function Host:sanitizer_report()
  local log = self:log()
  local at = log:find("ERROR: AddressSanitizer", 1, true) or log:find("ERROR: LeakSanitizer", 1, true)
    or log:find("runtime error: ", 1, true)
  return at and log:sub(math.max(1, at - 200), at + 3000)
end

--- Graceful stop (SIGTERM); returns the exit code. Raises when the process
-- reported a sanitizer finding while it ran or exited (ASan builds).
function Host:stop()
  if self.stopped then return self.stopped_code end
  self.stopped = true
  self.stopped_code = self:signal("TERM")
  if not self.stopped_code then self:signal("KILL", 5) end
  local report = self:sanitizer_report()
  if report then error("the host reported a sanitizer finding:\n" .. report, 2) end
  return self.stopped_code
end

--- SIGKILL: a crash.
function Host:kill()
  return self:signal("KILL", 5)
end

--- HTTP request on this host: see M.request.
function Host:request(method, path, opts)
  opts = opts or {}
  opts.port = self.port
  return M.request(method, path, opts)
end

--- A development HS256 token for `sub` (claims in opts override: exp, nbf, iat, iss, aud).
function M.token(sub, opts)
  local jwt = require "jwt"
  local now = os.time()
  local claims = { sub = sub, iat = now, exp = now + 3600 }
  for k, v in pairs(opts or {}) do
    if k ~= "secret" then claims[k] = v end
  end
  return jwt.sign_hs256(claims, (opts and opts.secret) or M.dev_secret)
end

local function read_response(conn)
  local line, err = conn:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    local h = conn:receive("*l")
    if not h or h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      headers[k] = headers[k] and (headers[k] .. ", " .. v) or v
    end
  end
  local body = ""
  local len = tonumber(headers["content-length"])
  if len and len > 0 then body = conn:receive(len) or "" end
  return status, body, headers
end
M.read_response = read_response

--- One HTTP/1.1 request. opts: port, headers, body (table -> JSON, string -> as
-- is), token (sets Authorization), timeout. Returns status, body (decoded when
-- JSON), headers (lower-case names), raw body. Returns nil, err on a
-- connection failure.
function M.request(method, path, opts)
  opts = opts or {}
  local conn = socket.tcp()
  conn:settimeout(opts.timeout or 30)
  local ok, err = conn:connect("127.0.0.1", opts.port)
  if not ok then return nil, err end
  local headers = { ["Host"] = "127.0.0.1", ["Connection"] = "close" }
  local body = opts.body
  if type(body) == "table" then
    body = json.encode(body)
    headers["Content-Type"] = "application/json"
  end
  if opts.token then headers["Authorization"] = "Bearer " .. opts.token end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if body then headers["Content-Length"] = #body end
  local req = { method .. " " .. path .. " HTTP/1.1" }
  for k, v in pairs(headers) do req[#req + 1] = k .. ": " .. tostring(v) end
  req[#req + 1] = ""
  req[#req + 1] = body or ""
  conn:send(table.concat(req, "\r\n"))
  local status, raw, rheaders = read_response(conn)
  conn:close()
  if not status then return nil, raw end
  local decoded = raw
  if rheaders["content-type"] and rheaders["content-type"]:find("json", 1, true) and raw ~= "" then
    decoded = json.decode(raw) or raw
  end
  return status, decoded, rheaders, raw
end

--- Send raw bytes on a new connection and read until the server closes or
-- `timeout` passes; returns everything received.
function M.raw(port, bytes, timeout)
  local conn = socket.tcp()
  conn:settimeout(timeout or 5)
  assert(conn:connect("127.0.0.1", port))
  if bytes and #bytes > 0 then conn:send(bytes) end
  local chunks = {}
  while true do
    local data, err, partial = conn:receive(8192)
    local got = data or partial
    if got and #got > 0 then chunks[#chunks + 1] = got end
    if err then break end
  end
  conn:close()
  return table.concat(chunks)
end

--- Send raw HTTP requests (strings) at once, each on its own connection, and wait for
-- all answers; returns a list of {status=, body=, at=seconds since start}.
function M.send_together(port, raws)
  local conns, results, t0 = {}, {}, socket.gettime()
  for i, raw in ipairs(raws) do
    local c = socket.tcp()
    c:settimeout(30)
    assert(c:connect("127.0.0.1", port))
    c:send(raw)
    conns[i] = c
  end
  for i, c in ipairs(conns) do
    local status, body = read_response(c)
    results[i] = { status = status, body = body, at = socket.gettime() - t0 }
    c:close()
  end
  return results
end

--- The sum of a metric's samples in one scrape of `host`'s /metrics (every sample of
-- `name`, with or without labels, whose line contains `labels` when given).
function M.metric(host, name, labels)
  local _, body = host:request("GET", "/metrics")
  local total = 0
  for line in tostring(body):gmatch("[^\n]+") do
    local rest = line:sub(#name + 1, #name + 1)
    if line:sub(1, #name) == name and (rest == "{" or rest == " ")
        and (not labels or line:find(labels, 1, true)) then
      total = total + tonumber(line:match(" (%S+)$"))
    end
  end
  return total
end

--- Send raw requests at once, each on its own connection from the local address `from`
-- (any 127.x.y.z: a client address for the per-address limits); returns
-- {status=, body=, headers=, conn=} in order. A 101 keeps its socket open as `conn`;
-- the other connections are closed.
function M.send_from(port, from, raws)
  local conns, out = {}, {}
  for i, raw in ipairs(raws) do
    local c = socket.tcp()
    c:settimeout(30)
    assert(c:bind(from, 0))
    assert(c:connect("127.0.0.1", port))
    c:send(raw)
    conns[i] = c
  end
  for i, c in ipairs(conns) do
    local status, body, headers = read_response(c)
    out[i] = { status = status, body = body, headers = headers }
    if status == 101 then out[i].conn = c else c:close() end
  end
  return out
end

--- How many responses had each status: {[status] = count}.
function M.tally(responses)
  local by = {}
  for _, r in ipairs(responses) do by[r.status] = (by[r.status] or 0) + 1 end
  return by
end

--- Send `n` requests at once on `n` connections and wait for all answers;
-- returns a list of {status=, body=, at=seconds since start}.
function M.concurrent(port, n, method, path_fn, opts)
  opts = opts or {}
  local raws = {}
  for i = 1, n do
    local path = type(path_fn) == "function" and path_fn(i) or path_fn
    local hdr = method .. " " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if opts.token then hdr = hdr .. "Authorization: Bearer " .. opts.token .. "\r\n" end
    raws[i] = hdr .. "\r\n"
  end
  return M.send_together(port, raws)
end

return M

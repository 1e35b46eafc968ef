-- Starting the real daprd (scripts/install-daprd) and Redis for the Dapr specs of the
-- state, secrets and bindings building blocks and of `make up-dapr`. Each spec gets its
-- own temporary directory, Redis port and copies of dapr/local/*.yaml pointed at it.
local h = require "spec.helpers"

local M = {}

function M.read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A background process with its pid and log in `dir`.
function M.spawn(dir, name, env, cmd)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. h.sh_quote(v) end
  local line = string.format("env %s %s >>%s/%s.log 2>&1 & echo $! >%s/%s.pid",
    table.concat(parts, " "), cmd, dir, name, dir, name)
  os.execute("sh -c " .. h.sh_quote(line) .. " >/dev/null 2>&1")
  local pid = tonumber(M.read(dir .. "/" .. name .. ".pid"))
  return { pid = pid, log = dir .. "/" .. name .. ".log" }
end

function M.stop(p)
  if p and p.pid then os.execute("kill " .. p.pid .. " 2>/dev/null") end
end

--- Remove a spec's temporary directory (DAPR_E2E_KEEP=1 keeps its daprd, Redis and
-- host logs for a look afterwards).
function M.remove_dir(dir)
  if dir and os.getenv("DAPR_E2E_KEEP") ~= "1" then os.execute("rm -rf " .. h.sh_quote(dir)) end
end

--- The daprd binary (built or taken from the cache; fails rather than skipping).
function M.binary()
  local out, ok = h.sh("scripts/install-daprd")
  assert(ok, "scripts/install-daprd failed (this spec needs daprd):\n" .. out)
  local bin = out:match("([^\n]+)$")
  assert(io.open(bin), "no daprd at " .. tostring(bin))
  return bin
end

--- A temporary directory with a running Redis; answers dir, redis process, port.
function M.redis()
  assert(h.sh("command -v redis-server") ~= "", "redis-server is missing (apt-get install redis-server)")
  local dir = h.sh("mktemp -d /tmp/dapr-spec.XXXXXX")
  local port = h.free_port()
  local redis = M.spawn(dir, "redis", {}, "redis-server --port " .. port ..
    " --bind 127.0.0.1 --save '' --appendonly no --dir " .. h.sh_quote(dir))
  assert(h.eventually(function() return h.sh("redis-cli -p " .. port .. " ping") == "PONG" end, 10),
    "redis-server did not start:\n" .. M.read(redis.log))
  return dir, redis, port
end

--- Copy dapr/local/<names> into dir/resources, Redis at `port`, `edit(name, text)`
-- for any other change. Answers the resources directory.
function M.resources(dir, port, names, edit)
  local res = dir .. "/resources"
  os.execute("mkdir -p " .. h.sh_quote(res))
  for _, name in ipairs(names) do
    local text = M.read("dapr/local/" .. name):gsub("localhost:6379", "127.0.0.1:" .. port)
    if edit then text = edit(name, text) end
    M.write(res .. "/" .. name, text)
  end
  return res
end

--- Start daprd beside an app listening on app_port; waits until /v1.0/healthz is 204.
-- opts: app_id, app_port, resources, env (for daprd), bin, http_port (picked when absent;
-- start the app with DAPR_HTTP_PORT = this port).
function M.sidecar(dir, opts)
  local http_port = opts.http_port or h.free_port()
  local grpc_port, internal_port = h.free_port(), h.free_port()
  local p = M.spawn(dir, opts.app_id .. "-daprd", opts.env or {},
    table.concat({ h.sh_quote(opts.bin), "--app-id", opts.app_id, "--app-port", opts.app_port,
      "--app-protocol http --app-channel-address 127.0.0.1",
      "--dapr-http-port", http_port, "--dapr-grpc-port", grpc_port,
      "--dapr-internal-grpc-port", internal_port, "--dapr-listen-addresses 127.0.0.1",
      "--enable-metrics=false --log-level info",
      "--resources-path", h.sh_quote(opts.resources) }, " "))
  p.http_port = http_port
  local ready = h.eventually(function()
    return h.request("GET", "/v1.0/healthz", { port = http_port, timeout = 1 }) == 204
  end, 60)
  assert(ready, opts.app_id .. "'s daprd did not become ready:\n" .. M.read(p.log))
  return p
end

return M

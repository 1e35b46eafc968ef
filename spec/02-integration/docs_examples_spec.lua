-- The shell examples of README.md and docs/api.md run against a live server, so that the
-- docs cannot rot (issue 19). Every ```sh block that talks to the server (it calls curl
-- or mints a token) is extracted and run, in document order, in one bash per file, as a
-- reader would in the repository while `make run` runs: a directory with
-- `.data/dev-secret` and `build/` (this build), no AUTH_DEV_SECRET or DATABASE_URL in the
-- environment, `localhost:8080` pointing at the host this spec starts with every bundle
-- of services/ (as `make run`). A `curl` wrapper
-- records every answer's status: each must be below 400. Between blocks the spec waits
-- for the consumers (history, recurring-task) to catch up, as a reader typing does.
-- Also `todo-host events` without DATABASE_URL: the database of `make run` (.data/pg).
local h = require "spec.helpers"

-- Every bundle of services/, as `make run` serves them (scripts/run).
local function all_bundles()
  local out = {}
  local p = assert(io.popen("ls -d services/*/ 2>/dev/null"))
  for d in p:lines() do
    d = d:gsub("/$", "")
    local f = io.open(d .. "/service.lua", "r")
    if f then
      f:close()
      out[#out + 1] = d
    end
  end
  p:close()
  return out
end

-- The ```sh blocks of a Markdown file that talk to the server: { {line =, text =}, ... }.
local function live_blocks(path)
  local f = assert(io.open(path, "r"))
  local blocks, current, n = {}, nil, 0
  for line in f:lines() do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        local text = table.concat(current.lines, "\n")
        if text:find("curl ", 1, true) or text:find("todo-host token", 1, true) then
          blocks[#blocks + 1] = { line = current.line, text = text }
        end
        current = nil
      else
        current.lines[#current.lines + 1] = line
      end
    elseif line:match("^```sh%s*$") then
      current = { line = n, lines = {} }
    end
  end
  f:close()
  return blocks
end

describe("docs: every shell example runs against a live server", function()
  local host, dir, repo

  setup(function()
    host = h.start { bundles = all_bundles(), env = { BUS_POLL_SECONDS = 0.5 } }
    repo = h.sh("pwd")
    dir = h.sh("mktemp -d /tmp/todo-docs-examples.XXXXXX")
    local build = h.host_bin:match("^(.*)/[^/]+$")
    if build:sub(1, 1) ~= "/" then build = repo .. "/" .. build end
    assert(select(2, h.sh("mkdir -p " .. dir .. "/.data && printf %s " .. h.sh_quote(h.dev_secret)
      .. " >" .. dir .. "/.data/dev-secret && ln -s " .. h.sh_quote(build) .. " " .. dir .. "/build")))
  end)

  teardown(function()
    if host then host:stop() end
    if dir then h.sh("rm -rf " .. h.sh_quote(dir)) end
  end)

  -- Run the live blocks of `path`; returns the statuses { {block =, status =, request =} }
  -- and the bash output, failing on a non-zero exit.
  local function run_examples(path)
    local blocks = live_blocks(path)
    assert.is_true(#blocks > 0, "no examples found in " .. path)
    local log = dir .. "/curl.log"
    local script = {
      "set -eo pipefail",
      "cd " .. h.sh_quote(dir),
      -- every answer's status, with its block, goes to the log (stdout stays the example's)
      "curl() { command curl --max-time 20 -w '%{stderr}STATUS %{http_code} %{method} %{url_effective}\\n' \"$@\" "
        .. "2>>" .. h.sh_quote(log) .. "; }",
      -- wait (10 s at most) until the consumers caught up and nothing is parked
      "__settle() { for _ in $(seq 100); do [ \"$(psql -X -At " .. h.sh_quote(host.database_url)
        .. " -c \"SELECT (SELECT coalesce(sum(p.last_seq - c.seq), 0) FROM bus_cursors c JOIN bus_partitions p"
        .. " USING (topic, part)) + (SELECT count(*) FROM bus_parked)\")\" = 0 ] && return 0; sleep 0.1; done; }",
    }
    for i, b in ipairs(blocks) do
      script[#script + 1] = "echo 'BLOCK " .. i .. " " .. path .. ":" .. b.line .. "' >>" .. h.sh_quote(log)
      script[#script + 1] = (b.text:gsub("localhost:8080", "127.0.0.1:" .. host.port))
      script[#script + 1] = "__settle"
    end
    local file = dir .. "/examples.sh"
    local f = assert(io.open(file, "w"))
    f:write(table.concat(script, "\n"), "\n")
    f:close()
    h.sh("rm -f " .. h.sh_quote(log))
    local out, ok = h.sh("env -u AUTH_DEV_SECRET -u DATABASE_URL bash " .. h.sh_quote(file))
    local lf = io.open(log, "r")
    local text = lf and lf:read("a") or ""
    if lf then lf:close() end
    assert(ok, "the examples of " .. path .. " failed:\n" .. out .. "\n" .. text)
    local statuses, block = {}, nil
    for line in text:gmatch("[^\n]+") do
      local b = line:match("^BLOCK %d+ (.*)$")
      if b then block = b end
      local status, request = line:match("^STATUS (%d+) (.*)$")
      if status then statuses[#statuses + 1] = { block = block, status = tonumber(status), request = request } end
    end
    return statuses, blocks, out
  end

  for _, path in ipairs({ "README.md", "docs/api.md" }) do
    it("runs the examples of " .. path .. ", every answer below 400", function()
      local statuses, blocks = run_examples(path)
      local calls = 0
      for _, b in ipairs(blocks) do
        for _ in b.text:gmatch("curl ") do calls = calls + 1 end
      end
      assert.is_true(#statuses >= calls, #statuses .. " answers for " .. calls .. " curl calls")
      for _, s in ipairs(statuses) do
        assert.is_true(s.status >= 200 and s.status < 400,
          s.block .. ": " .. s.request .. " answered " .. s.status)
      end
    end)
  end

  it("todo-host events finds the database of make run under .data/, or says what is missing", function()
    -- a copy of this todo-host in <here>/build/, so that "the repository of the executable"
    -- is <here>; run from <here>/elsewhere (and from <here> itself)
    local here = dir .. "/events"
    local exe = h.host_bin:sub(1, 1) == "/" and h.host_bin or (repo .. "/" .. h.host_bin)
    assert(select(2, h.sh("mkdir -p " .. here .. "/build " .. here .. "/elsewhere && cp " .. h.sh_quote(exe)
      .. " " .. here .. "/build/todo-host")))
    local function events(from)
      return h.sh("cd " .. h.sh_quote(from) .. " && env -u DATABASE_URL " .. here .. "/build/todo-host events lag")
    end
    -- no DATABASE_URL and no make run database: say what is missing
    local out, ok = events(here .. "/elsewhere")
    assert.is_falsy(ok)
    assert.truthy(out:find("DATABASE_URL is not set", 1, true), out)
    assert.truthy(out:find(".data/pg/port", 1, true), out)
    -- make run's cluster: its port in .data/pg/port, its database "todo" (migrated here)
    local port = host.database_url:match(":(%d+)/")
    local todo = host.database_url:gsub("/[^/]+$", "/todo")
    local mig, mok = h.sh("DATABASE_URL=" .. h.sh_quote(todo) .. " " .. h.sh_quote(exe) .. " migrate services/api")
    assert(mok, mig)
    h.sh("mkdir -p " .. here .. "/.data/pg && echo " .. port .. " >" .. here .. "/.data/pg/port")
    for _, from in ipairs({ here, here .. "/elsewhere" }) do
      out, ok = events(from)
      assert(ok, out)
      assert.truthy(out:find("behind", 1, true) or out:find("no subscription groups yet", 1, true), out)
    end
    -- a cluster that is not running: which one, and what to check
    h.sh("echo 1 >" .. here .. "/.data/pg/port")
    out, ok = events(here)
    assert.is_falsy(ok)
    assert.truthy(out:find("make run", 1, true) and out:find("port 1", 1, true), out)
  end)
end)

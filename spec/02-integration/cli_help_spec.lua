-- The command line as a new user meets it (issue 19): every command prints its
-- usage with --help (exit 0, on stdout), `--help` lists every command (events
-- included), `token` names each thing that is missing, and the README names PORT
-- and how to run with --watch.
local h = require "spec.helpers"

local bin = h.sh_quote(h.host_bin)

-- stdout, stderr and exit status of a command line
local function run(args, env)
  local dir = h.sh("mktemp -d /tmp/todo-cli.XXXXXX")
  local cmd = string.format("env -u AUTH_DEV_SECRET %s %s %s >%s/out 2>%s/err; echo $?", env or "",
    bin, args, dir, dir)
  local code = tonumber((h.sh(cmd)))
  local function slurp(name)
    local f = assert(io.open(dir .. "/" .. name))
    local s = f:read("a")
    f:close()
    return s
  end
  local out, err = slurp("out"), slurp("err")
  os.execute("rm -rf " .. dir)
  return out, err, code
end

describe("todo-host's command line", function()
  for _, cmd in ipairs { "run", "migrate", "script", "token" } do
    it(cmd .. " --help prints its usage and exits 0", function()
      local out, err, code = run(cmd .. " --help")
      assert.are.equal(0, code, err)
      assert.truthy(out:find("^usage: todo%-host " .. cmd), out)
    end)
  end

  it("run --help says how to watch and that settings are flags", function()
    local out = run("run --help")
    assert.truthy(out:find("--watch", 1, true))
    assert.truthy(out:find("WATCH=1", 1, true))
  end)

  it("lists every command in --help, events included", function()
    local out, _, code = run("--help")
    assert.are.equal(0, code)
    for _, cmd in ipairs { "run", "migrate", "script", "token", "events" } do
      assert.truthy(out:find("todo-host " .. cmd, 1, true), cmd .. " is not in --help")
    end
  end)

  it("passes --help after a script's FILE on to the script", function()
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write("print('arg1=' .. tostring(arg[1]))")
    f:close()
    local out, err, code = run("script " .. file .. " --help")
    os.remove(file)
    assert.are.equal(0, code, err)
    assert.are.equal("arg1=--help\n", out)
  end)

  it("token names everything that is missing, then what remains", function()
    local _, err, code = run("token")
    assert.are.equal(2, code)
    assert.truthy(err:find("missing --sub USER", 1, true), err)
    assert.truthy(err:find("missing AUTH_DEV_SECRET", 1, true), err)
    assert.truthy(err:find(".data/dev-secret", 1, true), err)
    _, err, code = run("token --sub me", "AUTH_DEV_SECRET=s3cret")
    assert.are.equal(0, code, err)
    _, err, code = run("token --sub", "AUTH_DEV_SECRET=s3cret")
    assert.are.equal(2, code)
    assert.truthy(err:find("--sub needs a value", 1, true), err)
    _, err, code = run("token --ttl 60", "AUTH_DEV_SECRET=s3cret")
    assert.are.equal(2, code)
    assert.truthy(err:find("missing --sub USER", 1, true), err)
    assert.falsy(err:find("AUTH_DEV_SECRET", 1, true), err)
  end)

  it("README names PORT, make run WATCH=1 and the events command", function()
    local f = assert(io.open("README.md"))
    local readme = f:read("a")
    f:close()
    assert.truthy(readme:find("PORT", 1, true))
    assert.truthy(readme:find("make run WATCH=1", 1, true))
    assert.truthy(readme:find("todo-host events", 1, true))
  end)
end)

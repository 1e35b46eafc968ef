-- scripts/check-logs, which scripts/test runs over the logs of every host of the run
-- (issue 19: no token or secret in any log line): it passes clean logs and names each
-- file that holds a JWT, a bearer credential or a given secret.
local h = require "spec.helpers"

describe("scripts/check-logs", function()
  local dir
  before_each(function() dir = h.sh("mktemp -d /tmp/todo-check-logs.XXXXXX") end)
  after_each(function() os.execute("rm -rf " .. h.sh_quote(dir)) end)

  local function plant(name, text)
    os.execute("mkdir -p " .. h.sh_quote(dir .. "/" .. name:match("^(.*)/") ))
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end

  local function check()
    return h.sh("scripts/check-logs " .. h.sh_quote(dir) .. " s3cret-value 2>&1; echo rc=$?")
  end

  it("passes logs with no credential, and a run without logs", function()
    assert.truthy(check():find("log secrets: 1 passed, 0 failed", 1, true))
    plant("a/host.log", '{"msg":"a bearer token is required: send Authorization: Bearer <token>"}\n'
      .. '{"msg":"auth: AUTH_DEV_SECRET is set; HS256 dev tokens are accepted"}\n')
    local out = check()
    assert.truthy(out:find("log secrets: 1 passed, 0 failed", 1, true), out)
    assert.truthy(out:find("rc=0", 1, true), out)
  end)

  it("names every log holding a JWT, a bearer credential or a given secret", function()
    plant("a/host.log", '{"msg":"ok"}\n')
    plant("b/host.log", '{"msg":"refused","token":"' .. h.token("x") .. '"}\n')
    plant("c/host.log", '{"msg":"header","authorization":"Bearer abcdefghijklmnopqrstuvwxyz"}\n')
    plant("d/host.log", '{"msg":"config","key":"s3cret-value"}\n')
    local out = check()
    assert.truthy(out:find("log secrets: 0 passed, 3 failed", 1, true), out)
    assert.truthy(out:find("rc=1", 1, true), out)
    assert.truthy(out:find("a JWT in " .. dir .. "/b/host.log", 1, true), out)
    assert.truthy(out:find("a bearer credential in " .. dir .. "/c/host.log", 1, true), out)
    assert.truthy(out:find("a secret in " .. dir .. "/d/host.log", 1, true), out)
    assert.is_nil(out:find(dir .. "/a/host.log", 1, true), out)
  end)

  it("gets every host of the run: spec hosts log under TODO_SPEC_TMP when it is set", function()
    local parent = os.getenv("TODO_SPEC_TMP")
    if not parent then return pending("TODO_SPEC_TMP is set by scripts/test") end
    local host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true }
    host:stop()
    assert.are.equal(parent .. "/", host.logfile:sub(1, #parent + 1))
  end)
end)

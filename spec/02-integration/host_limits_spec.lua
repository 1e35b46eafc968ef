-- Host limits at their edges and the bundle sandbox (issue 13: changes the rest of the
-- suite let through): a body of exactly MAX_BODY_BYTES is served, one byte more is 413;
-- a bundle has no dofile, loadfile, io, os.execute, os.remove, os.exit, no debug library
-- (not even through require), no package.loadlib, nor C modules from disk.
local h = require "spec.helpers"

describe("host limits and sandbox", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello", "spec/fixtures/sandbox" }, no_database = true,
                     env = { MAX_BODY_BYTES = 2048 } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  it("serves a body of exactly MAX_BODY_BYTES and refuses one byte more with 413", function()
    local status, body = host:request("POST", "/echo/a/b", { body = string.rep("x", 2048) })
    assert.are.equal(200, status)
    assert.are.equal(2048, #body.body)
    status = host:request("POST", "/echo/a/b", { body = string.rep("x", 2049) })
    assert.are.equal(413, status)
  end)

  it("gives a bundle no way to run files, commands or C modules from disk", function()
    local status, env = host:request("GET", "/sandbox")
    assert.are.equal(200, status)
    for _, name in ipairs { "dofile", "loadfile", "io", "os_execute", "os_remove", "os_exit", "c_module",
                            "debug", "package_loadlib", "require_debug" } do
      assert.is_false(env[name], name .. " is available to a bundle")
    end
    assert.are.equal("", env.cpath)
    -- what stays: the pure parts
    assert.is_true(env.os_getenv)
    assert.is_true(env.os_time)
    assert.is_true(env.load_text)
  end)
end)

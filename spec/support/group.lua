--- Coroutine groups for specs that run inside todo-host: start coroutines in one loop
-- turn and wait for all of them.
local task = require "task"
local assert = require "luassert"

local M = {}

-- Coroutines started with g.spawn(fn); g.wait() returns when all of them ended (or
-- after `timeout` seconds: then it fails instead of hanging) and fails on their errors.
function M.new()
  local g = { left = 0, errors = {}, done = task.event() }
  function g.spawn(fn)
    g.left = g.left + 1
    task.spawn(function()
      local ok, err = pcall(fn)
      if not ok then g.errors[#g.errors + 1] = tostring(err) end
      g.left = g.left - 1
      if g.left == 0 and g.waiting then g.done:set() end
    end)
  end
  function g.wait(timeout)
    g.waiting = true
    if g.left > 0 then
      task.spawn(function()
        task.wait(timeout or 5)
        g.done:set()
      end)
      g.done:wait()
    end
    assert.are.same({}, g.errors)
    assert.are.equal(0, g.left, "coroutines still running after the time limit")
  end
  return g
end

return M

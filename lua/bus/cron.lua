--- The app's side of a Dapr cron input binding (`bindings.cron`, contract section 6):
-- daprd may ask `OPTIONS /<name>` at start (2xx = the app reads the binding; 404 and
-- the binding is silently never delivered; daprd 1.15 with `direction: input` did not
-- ask in our runs), then sends `POST /<name>` on every tick. The answer must be
-- exactly 200, or daprd counts the tick as failed.
-- A tick is a nudge, never the only trigger: every replica's sidecar fires on its own,
-- and a lost tick is harmless. With BUS=postgres there is no daprd and these routes
-- are simply never called.
--
--   routes = { ..., table.unpack(require("bus.cron").routes("reminder-tick", scheduler.nudge)) }
-- @module bus.cron
local dapr_app = require "bus.dapr_app"
local log = require "log"

local M = {}

--- The two routes of a cron binding named `name` (the component's metadata.name).
-- @tparam string name
-- @tparam function on_tick `function()`; an error is logged and answered 500
-- @treturn table a list of `{method=, path=, handler=}`
function M.routes(name, on_tick)
  assert(type(name) == "string" and name:match("^[%w%-_]+$"), "bus.cron: bad binding name")
  local path = "/" .. name
  local function guarded(fn)
    return function(req)
      if not dapr_app.token_ok(req) then
        return 401, { error = { code = "unauthorized", message = "missing or wrong dapr-api-token" } }
      end
      return fn(req)
    end
  end
  return {
    { method = "OPTIONS", path = path, handler = guarded(function() return 200, "" end) },
    { method = "POST", path = path, handler = guarded(function()
      local ok, err = pcall(on_tick)
      if not ok then
        log.error("cron tick failed", { binding = name, error = tostring(err) })
        return 500, { error = { code = "internal_error", message = "the tick handler failed (see the log)" } }
      end
      return 200, ""
    end) },
  }
end

return M

-- lua/state on one machine: the PostgreSQL backend (table state_entries, the api
-- bundle's migration 040) through the state-probe fixture, against a real PostgreSQL.
-- The same contract runs against the real daprd in spec/03-e2e/dapr_state_e2e_spec.lua.
local h = require "spec.helpers"
local contract = require "spec.support.state_contract"

describe("state (PostgreSQL backend)", function()
  local host
  lazy_setup(function()
    local db = h.new_database()
    local out, ok = h.sh("env DATABASE_URL=" .. h.sh_quote(db) .. " " .. h.sh_quote(h.host_bin) ..
      " migrate services/api")
    assert(ok, "migrate failed: " .. out)
    host = h.start { database_url = db, bundles = { "spec/fixtures/state-probe" }, skip_migrate = true }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  contract({ it = it, assert = assert }, function() return host end, "postgres")
end)

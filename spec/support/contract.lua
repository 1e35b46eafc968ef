-- The shared half of the OpenAPI contract specs (spec/02-integration/*_contract_spec.lua):
-- a `call` that makes a request and records the exchange, and `check`, which hands the
-- records to spec/support/openapi_check.py against spec/contracts/openapi.yaml.
local h = require "spec.helpers"
local json = require "json"
local assert = require "luassert"

local M = {}

--- A recording `call(method, path, opts)` and the list it appends to. `current()` returns
--- the host and the default token at call time (specs that start the host in lazy_setup).
--- opts.token = false sends no token; a 500 or a missing status fails the spec at once.
function M.recorder(current)
  local observed = {}
  local function call(method, path, opts)
    local host, token = current()
    opts = opts or {}
    if opts.token == nil then opts.token = token end
    if opts.token == false then opts.token = nil end
    local status, body, headers, raw = host:request(method, path, opts)
    assert.is_number(status, method .. " " .. path)
    assert.are_not.equal(500, status, method .. " " .. path .. ": " .. tostring(raw))
    -- The raw body goes to the checker: decoding here would turn an empty [] into {}.
    observed[#observed + 1] = {
      method = method, path = path:match("^[^?]*"), status = status, headers = headers, raw = raw or "",
    }
    return status, body, headers
  end
  return call, observed
end

--- Checks `records` with openapi_check.py; opts.bundle limits it to one bundle's
--- operations, opts.schema checks bare bodies against one schema (e.g. "Error").
function M.check(records, opts)
  opts = opts or {}
  local dir = h.sh("mktemp -d /tmp/contract.XXXXXX")
  local path = dir .. "/observed.json"
  local f = assert(io.open(path, "w"))
  f:write(json.encode(records))
  f:close()
  local cmd = "python3 spec/support/openapi_check.py "
    .. (opts.schema and ("--schema " .. h.sh_quote(opts.schema) .. " ") or "")
    .. "spec/contracts/openapi.yaml " .. h.sh_quote(path)
    .. (opts.bundle and (" " .. h.sh_quote(opts.bundle)) or "")
  local out, ok = h.sh(cmd)
  assert(ok, "\n" .. out)
end

return M

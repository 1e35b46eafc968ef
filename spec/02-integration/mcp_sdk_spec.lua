-- /mcp driven by the official MCP TypeScript SDK client (spec/mcp/, pinned, installed by
-- scripts/bootstrap with npm ci): node's test runner runs spec/mcp/client.test.mjs
-- against a host started here. Fails (never skips) when Node.js or the SDK is missing.
local h = require "spec.helpers"

describe("MCP endpoint with the official TypeScript SDK client", function()
  local host
  lazy_setup(function() host = h.start({ bundles = { "services/api", "services/chat" } }) end)
  lazy_teardown(function() if host then host:stop() end end)

  it("passes the client's tests", function()
    local _, sdk = h.sh("test -d spec/mcp/node_modules/@modelcontextprotocol/sdk")
    assert(sdk, "spec/mcp/node_modules is missing: run scripts/bootstrap (npm ci in spec/mcp)")
    local other = h.token("mcp-sdk-other")
    local s, theirs = host:request("POST", "/api/tasks", { token = other,
      body = { title = "Not yours", due_at = "2030-01-01T09:00:00Z" } })
    assert.equal(201, s)
    local env = string.format("MCP_URL=http://127.0.0.1:%d/mcp MCP_TOKEN=%s MCP_OTHER_TASK_ID=%s",
      host.port, h.token("mcp-sdk-user"), theirs.id)
    local out, ok = h.sh("cd spec/mcp && env " .. env .. " node --test --test-reporter=spec 2>&1")
    print(out)
    assert(ok, "the SDK client's tests failed")
    local _, after = host:request("GET", "/api/tasks/" .. theirs.id, { token = other })
    assert.equal(theirs.version, after.version)
  end)
end)

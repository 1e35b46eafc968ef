-- The server's own errors (answered by the C host, before or instead of a handler)
-- in the one error shape of the API: every status the server answers by itself
-- (400, 404, 405, 408, 413, 431, 500, 503) has a JSON body valid against the
-- OpenAPI `Error` schema (spec/contracts/openapi.yaml, checked by
-- spec/support/openapi_check.py), a code documented in docs/api.md, and the
-- request id of its X-Request-Id header.
local h = require "spec.helpers"
local contract = require "spec.support.contract"
local json = require "json"
local socket = require "socket"

-- status, headers (lower-case names), body text of one raw HTTP response
local function parse(raw)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  assert(head, "no complete response in: " .. raw)
  local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
  return status, headers, body
end

local function read_file(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end

describe("the server's own errors: one shape, documented", function()
  local host, capped
  local seen = {}

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                     env = { MAX_BODY_BYTES = 1024, MAX_HEADER_BYTES = 2048, HEADER_TIMEOUT_MS = 300 } }
    capped = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                       env = { MAX_CONNECTIONS = 1 } }
  end)
  lazy_teardown(function()
    if host then host:stop() end
    if capped then capped:stop() end
  end)

  -- One raw exchange: the status, the decoded error, and the record for the schema check.
  local function expect(where, port, bytes, status, code)
    local raw = h.raw(port, bytes, 5)
    local got, headers, body = parse(raw)
    assert.are.equal(status, got, where .. ": " .. raw)
    local doc = json.decode(body)
    assert.is_table(doc, where .. ": " .. body)
    assert.are.equal(code, doc.error.code, where)
    assert.is_string(doc.error.message, where)
    assert.are.equal(headers["x-request-id"], doc.error.request_id, where)
    seen[#seen + 1] = { where = where, raw = body, content_type = headers["content-type"], code = code }
    return doc, headers
  end

  it("404 for a path no route declares", function()
    expect("404", host.port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found")
  end)

  it("405 with Allow for a method the path does not accept", function()
    local _, headers = expect("405", host.port, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      405, "method_not_allowed")
    assert.are.equal("GET, HEAD", headers["allow"])
  end)

  it("400 for a request that is not HTTP", function()
    expect("400", host.port, "NOT HTTP AT ALL\r\n\r\n", 400, "bad_request")
  end)

  it("408 for headers not complete in time", function()
    expect("408", host.port, "GET /hello HTTP/1.1\r\nHost: x\r\n", 408, "request_timeout")
  end)

  it("413 for a body over MAX_BODY_BYTES", function()
    expect("413", host.port, "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
      413, "body_too_large")
  end)

  it("431 for headers over MAX_HEADER_BYTES", function()
    expect("431", host.port, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("a", 3000) .. "\r\n\r\n",
      431, "headers_too_large")
  end)

  it("500 for a failing handler, the same code and message as the Lua errors module", function()
    local doc = expect("500", host.port,
      "GET /fail HTTP/1.1\r\nHost: x\r\nX-Request-Id: shape-500\r\nConnection: close\r\n\r\n", 500, "internal_error")
    local errors = require "web.errors"
    local _, lua_body = errors.internal({ id = "shape-500" }, "cause")
    assert.are.equal(lua_body.error.code, doc.error.code)
    assert.are.equal(lua_body.error.message, doc.error.message)
  end)

  it("503 with Retry-After over MAX_CONNECTIONS", function()
    h.sleep(0.3) -- the server sees the readiness probe's connection close
    local held = socket.tcp()
    assert(held:connect("127.0.0.1", capped.port))
    h.sleep(0.1) -- and accepts this one: the next is over the cap
    local _, headers = expect("503", capped.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 503,
      "too_many_connections")
    held:close()
    assert.are.equal("1", headers["retry-after"])
  end)

  it("every body above matches the OpenAPI Error schema and every code is documented", function()
    assert.are.equal(8, #seen)
    local api = read_file("docs/api.md")
    for _, s in ipairs(seen) do
      assert.truthy(api:find("`" .. s.code .. "`", 1, true), s.code .. " is not in docs/api.md")
    end
    contract.check(seen, { schema = "Error" })
  end)
end)

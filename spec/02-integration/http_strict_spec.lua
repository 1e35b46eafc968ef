-- RFC 9112 strictness and request smuggling (issue 19). Debian's llhttp 8.1 runs
-- with its lenient flags off; the host adds the checks where 8.1 is more permissive
-- than RFC 9112 (Host, header-name syntax, transfer codings, versions, chunk
-- extensions). Each malformed framing below is answered 400 (501 for a transfer
-- coding the host does not implement, 400 when chunked is not the final coding as
-- RFC 9112 6.3 says, 505 for a version other than 1.0/1.1) and the connection is closed, so nothing
-- after it on the same connection is taken as a request; the rest is handled as
-- the RFC says (absolute-form targets, HTTP/1.0 keep-alive, Expect: 100-continue).
local h = require "spec.helpers"
local socket = require "socket"

-- Send bytes, read until the server closes (or `wait` seconds pass); returns
-- every status line's code in order, whether the server closed, and the bytes.
local function exchange(port, bytes, wait)
  local conn = socket.tcp()
  conn:settimeout(wait or 3)
  assert(conn:connect("127.0.0.1", port))
  conn:send(bytes)
  local chunks, closed = {}, false
  while true do
    local data, err, partial = conn:receive(8192)
    local got = data or partial
    if got and #got > 0 then chunks[#chunks + 1] = got end
    if err == "closed" then closed = true end
    if err then break end
  end
  conn:close()
  local all = table.concat(chunks)
  local statuses = {}
  for code in all:gmatch("HTTP/1%.[01] (%d%d%d) ") do statuses[#statuses + 1] = tonumber(code) end
  return statuses, closed, all
end

local OK = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

describe("HTTP/1.1 framing (RFC 9112)", function()
  local host

  lazy_setup(function()
    host = h.start { bundles = { "spec/fixtures/hello" }, no_database = true,
                     env = { MAX_BODY_BYTES = 2048, ACCESS_LOG = 0 } }
  end)
  lazy_teardown(function() if host then host:stop() end end)

  -- name, request bytes, expected status; every one must close the connection,
  -- and the OK request appended to each must never be answered.
  local rejected = {
    { "missing Host", "GET /hello HTTP/1.1\r\n\r\n", 400 },
    { "two Host fields", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400 },
    { "Host with a space", "GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n", 400 },
    { "Host with a path", "GET /hello HTTP/1.1\r\nHost: a/b\r\n\r\n", 400 },
    { "Host with userinfo", "GET /hello HTTP/1.1\r\nHost: u@a\r\n\r\n", 400 },
    { "empty Host", "GET /hello HTTP/1.1\r\nHost:\r\n\r\n", 400 },
    { "whitespace before the colon", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo : bar\r\n\r\n", 400 },
    { "whitespace inside a name", "GET /hello HTTP/1.1\r\nHost: x\r\nFo o: bar\r\n\r\n", 400 },
    { "an empty header name", "GET /hello HTTP/1.1\r\nHost: x\r\n: bar\r\n\r\n", 400 },
    { "a tab before the colon", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo\t: bar\r\n\r\n", 400 },
    { "a separator in a name", "GET /hello HTTP/1.1\r\nHost: x\r\nFo(o): bar\r\n\r\n", 400 },
    { "NUL in a name", "GET /hello HTTP/1.1\r\nHost: x\r\nFo\0o: bar\r\n\r\n", 400 },
    { "NUL in a value", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: b\0ar\r\n\r\n", 400 },
    { "a control character in a value", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: b\1ar\r\n\r\n", 400 },
    { "obsolete line folding", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: bar\r\n baz\r\n\r\n", 400 },
    { "a bare CR in a value", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: b\rar\r\n\r\n", 400 },
    { "a bare LF between fields", "GET /hello HTTP/1.1\r\nHost: x\nFoo: bar\r\n\r\n", 400 },
    { "Content-Length and Transfer-Encoding",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "0\r\n\r\n", 400 },
    { "two differing Content-Length", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        .. "Content-Length: 2\r\n\r\nab", 400 },
    { "two equal Content-Length", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        .. "Content-Length: 2\r\n\r\nab", 400 },
    { "a Content-Length list", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab", 400 },
    { "a signed Content-Length", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab", 400 },
    { "Transfer-Encoding not ending in chunked",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400 },
    { "an unknown transfer coding", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
        .. "0\r\n\r\n", 501 },
    { "a coding before chunked", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        .. "0\r\n\r\n", 501 },
    { "an obfuscated Transfer-Encoding", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n"
        .. "\r\n0\r\n\r\n", 501 },
    { "Transfer-Encoding with a space before the colon",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400 },
    { "a second Transfer-Encoding field", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        .. "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400 },
    { "HTTP/1.0 with Transfer-Encoding",
      "POST /echo/a/b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
    { "a chunk size that is not hex",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400 },
    { "a negative chunk size",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n", 400 },
    { "a chunk size that overflows", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "1ffffffffffffffff\r\nx\r\n0\r\n\r\n", 400 },
    { "a chunk without its CRLF", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "1\r\nxy\r\n0\r\n\r\n", 400 },
    { "a malformed chunk extension", "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "1;a b\r\nx\r\n0\r\n\r\n", 400 },
    { "chunk extensions over the body limit",
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=" .. string.rep("e", 3000)
        .. "\r\nx\r\n0\r\n\r\n", 413 },
    { "HTTP/0.9", "GET /hello\r\n\r\n", 400 },
    { "HTTP/1.2", "GET /hello HTTP/1.2\r\nHost: x\r\n\r\n", 505 },
    { "HTTP/2.0 in an HTTP/1 request line", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
    { "HTTP/0.9 spelled out", "GET /hello HTTP/0.9\r\nHost: x\r\n\r\n", 505 },
    { "an absurd request line", "GET /" .. string.rep("a", 100000) .. " HTTP/1.1\r\nHost: x\r\n\r\n", 431 },
    { "an absurd header line", "GET /hello HTTP/1.1\r\nHost: x\r\nFoo: " .. string.rep("a", 100000)
        .. "\r\n\r\n", 431 },
  }
  for _, case in ipairs(rejected) do
    local name, bytes, want = case[1], case[2], case[3]
    it("answers " .. want .. " and closes on " .. name, function()
      local statuses, closed, all = exchange(host.port, bytes .. OK)
      assert.are.same({ want }, statuses, all)
      assert.is_true(closed, "the connection stayed open")
    end)
  end

  it("answers a valid request, then rejects a bad one and answers nothing after it", function()
    local statuses, closed = exchange(host.port, OK .. "GET /hello HTTP/1.1\r\n\r\n" .. OK)
    assert.are.same({ 200, 400 }, statuses)
    assert.is_true(closed)
  end)

  it("takes an absolute-form request target as its path", function()
    local statuses, closed, all = exchange(host.port,
      "GET http://x/hello?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.are.same({ 200 }, statuses, all)
    assert.is_true(closed)
    assert.truthy(all:find("\r\n\r\nhello$"), all)
    local s2, _, all2 = exchange(host.port,
      "GET HTTP://X:80/echo/p/q?a=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.are.same({ 200 }, s2, all2)
    assert.truthy(all2:find('"path":"/echo/p/q"', 1, true), all2)
  end)

  it("keeps an HTTP/1.0 keep-alive connection open and says so", function()
    local one = "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    local statuses, closed, all = exchange(host.port, one .. one, 1)
    assert.are.same({ 200, 200 }, statuses, all)
    assert.is_false(closed, "the keep-alive connection was closed")
    local _, n = all:gsub("\r\nConnection: keep%-alive\r\n", "")
    assert.are.equal(2, n, all)
    -- without keep-alive an HTTP/1.0 answer closes
    local s2, closed2 = exchange(host.port, "GET /hello HTTP/1.0\r\n\r\n")
    assert.are.same({ 200 }, s2)
    assert.is_true(closed2)
  end)

  it("answers Expect: 100-continue before the body arrives", function()
    local conn = socket.tcp()
    conn:settimeout(3)
    assert(conn:connect("127.0.0.1", host.port))
    conn:send("POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert.are.equal("HTTP/1.1 100 Continue", conn:receive("*l"))
    assert.are.equal("", conn:receive("*l"))
    conn:send("abcd")
    local status, body = h.read_response(conn)
    conn:close()
    assert.are.equal(200, status)
    assert.truthy(body:find('"body":"abcd"', 1, true), body)
  end)

  it("answers Expect: 100-continue with a final 413 when the body is too large", function()
    local statuses, closed = exchange(host.port,
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\nExpect: 100-continue\r\n\r\n")
    assert.are.same({ 413 }, statuses)
    assert.is_true(closed)
  end)

  it("answers an unknown expectation with 417", function()
    local statuses, closed = exchange(host.port,
      "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\nab")
    assert.are.same({ 417 }, statuses)
    assert.is_true(closed)
  end)

  it("still serves chunked bodies with extensions within the limit", function()
    local statuses, _, all = exchange(host.port, "POST /echo/a/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n2;n=v\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    assert.are.same({ 200 }, statuses, all)
    assert.truthy(all:find('"body":"abc"', 1, true), all)
  end)

  it("serves HTTP/1.0 without Host", function()
    local statuses = exchange(host.port, "GET /hello HTTP/1.0\r\n\r\n")
    assert.are.same({ 200 }, statuses)
  end)
end)

-- Task API authentication through HTTP: every route needs a valid bearer token; every
-- refused token answers 401 with WWW-Authenticate and the one error shape.
-- JWKS tokens come from spec/support/jwt_signer.py (an independent implementation).
local h = require "spec.helpers"
local json = require "json"

local ROUTES = {
  { "GET", "/api/tasks" },
  { "POST", "/api/tasks", { title = "x" } },
  { "POST", "/api/tasks/bulk", { action = "complete", ids = { "00000000-0000-4000-8000-000000000000" } } },
  { "GET", "/api/tasks/00000000-0000-4000-8000-000000000000" },
  { "PATCH", "/api/tasks/00000000-0000-4000-8000-000000000000", { title = "x" } },
  { "DELETE", "/api/tasks/00000000-0000-4000-8000-000000000000" },
  { "POST", "/api/tasks/00000000-0000-4000-8000-000000000000/complete" },
  { "POST", "/api/tasks/00000000-0000-4000-8000-000000000000/reopen" },
  { "GET", "/api/tags" },
}

local function assert_401(status, body, headers, what)
  assert.are.equal(401, status, what)
  assert.is_table(body, what)
  assert.are.equal("unauthorized", body.error.code, what)
  assert.is_string(body.error.message, what)
  assert.matches("^Bearer", headers["www-authenticate"] or "")
end

describe("Task API: authentication with the dev secret", function()
  local host

  lazy_setup(function() host = h.start({ bundles = { "services/api" } }) end)
  lazy_teardown(function() if host then host:stop() end end)

  it("every route refuses a request without a token", function()
    for _, r in ipairs(ROUTES) do
      local status, body, headers = host:request(r[1], r[2], { body = r[3] })
      assert_401(status, body, headers, r[1] .. " " .. r[2])
      assert.are.equal('Bearer realm="todo"', headers["www-authenticate"])
    end
  end)

  it("every route accepts a valid token", function()
    local token = h.token("auth-ok")
    for _, r in ipairs(ROUTES) do
      local status = host:request(r[1], r[2], { body = r[3], token = token })
      assert.are_not.equal(401, status, r[1] .. " " .. r[2])
    end
  end)

  local now = os.time()
  local cases = {
    { "expired", function() return h.token("u", { exp = now - 3600, iat = now - 7200 }) end },
    { "not yet valid", function() return h.token("u", { nbf = now + 3600 }) end },
    { "issued in the future", function() return h.token("u", { iat = now + 3600, exp = now + 7200 }) end },
    { "bad signature", function() return h.token("u", { secret = "not-the-secret" }) end },
    { "tampered", function()
      local t = h.token("u")
      local a, _, c = t:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      local p = require("crypto").base64url_encode('{"sub":"admin","exp":' .. (now + 3600) .. "}")
      return a .. "." .. p .. "." .. c
    end },
    { "alg none", function()
      local b = require("crypto").base64url_encode
      return b('{"alg":"none","typ":"JWT"}') .. "." .. b('{"sub":"u","exp":' .. (now + 3600) .. "}") .. "."
    end },
    { "garbage", function() return "garbage" end },
    { "three dots of nothing", function() return "a.b.c" end },
  }
  for _, c in ipairs(cases) do
    it("401 for a token that is " .. c[1], function()
      local status, body, headers = host:request("GET", "/api/tasks", { token = c[2]() })
      assert_401(status, body, headers, c[1])
      assert.is_truthy(headers["www-authenticate"]:find('error="invalid_token"', 1, true))
    end)
  end

  it("401 for another scheme or a malformed header", function()
    for _, value in ipairs({ "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer a b", "Token abc" }) do
      local status, body, headers = host:request("GET", "/api/tasks", { headers = { Authorization = value } })
      assert_401(status, body, headers, value)
    end
  end)
end)

describe("Task API: authentication against a JWKS", function()
  local host, fx

  lazy_setup(function()
    local out, ok = h.sh("python3 spec/support/jwt_signer.py fixtures")
    assert(ok, out)
    fx = json.decode(out)
    local dir = h.sh("mktemp -d /tmp/api-auth-spec.XXXXXX")
    local f = assert(io.open(dir .. "/jwks.json", "w"))
    f:write(fx.jwks)
    f:close()
    host = h.start({ bundles = { "services/api" }, env = {
      AUTH_JWKS_FILE = dir .. "/jwks.json", AUTH_ISSUER = fx.issuer, AUTH_AUDIENCE = fx.audience,
      AUTH_DEV_SECRET = false,
    } })
  end)

  lazy_teardown(function() if host then host:stop() end end)

  for _, name in ipairs({ "eddsa_valid", "rs256_valid", "es256_valid" }) do
    it("accepts " .. name, function()
      local status, body = host:request("GET", "/api/tasks", { token = fx.tokens[name] })
      assert.are.equal(200, status, name)
      assert.is_table(body.items)
    end)
  end

  it("scopes tasks to the token's sub", function()
    local status, task = host:request("POST", "/api/tasks",
      { token = fx.tokens.eddsa_valid, body = { title = "jwks" } })
    assert.are.equal(201, status)
    -- same sub through another key type: the same user
    status = host:request("GET", "/api/tasks/" .. task.id, { token = fx.tokens.rs256_valid })
    assert.are.equal(200, status)
  end)

  local refused = {
    "expired", "not_yet_valid", "wrong_issuer", "missing_issuer", "wrong_audience",
    "wrong_audience_array", "tampered_payload", "eddsa_wrong_key", "rs256_wrong_key",
    "es256_wrong_key", "alg_none", "alg_none_kid", "alg_None_caps", "alg_missing",
    "hs256_valid", "confusion_rsa_pem", "confusion_ed_raw", "unknown_kid",
    "too_many_segments", "two_segments", "header_not_json", "payload_not_json",
  }
  for _, name in ipairs(refused) do
    it("401 for " .. name, function()
      local token = fx.tokens[name]
      assert.is_string(token, name)
      local status, body, headers = host:request("GET", "/api/tasks", { token = token })
      assert_401(status, body, headers, name)
    end)
  end
end)

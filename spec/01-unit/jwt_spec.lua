-- The jwt primitive against tokens made by an independent implementation
-- (spec/support/jwt_signer.py on python3-cryptography), so the verifier is
-- never checked against its own signatures.
local jwt = require "jwt"

local function decode_json(s)
  local ok, json = pcall(require, "json")
  if not ok or type(json) ~= "table" or not json.decode then json = require "cjson" end
  return json.decode(s)
end

local function source_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:match("^(.*)/spec/01%-unit/[^/]+$")
  return root or os.getenv("TH_SOURCE_DIR") or "."
end

local function load_fixtures()
  local cmd = "python3 '" .. source_root() .. "/spec/support/jwt_signer.py' fixtures"
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  assert(out and #out > 0, "jwt_signer.py produced nothing (python3-cryptography missing?)")
  return decode_json(out)
end

local F = load_fixtures()
local T = F.tokens

local function configure_jwks(extra)
  local opts = { jwks = F.jwks, issuer = F.issuer, audience = F.audience }
  for k, v in pairs(extra or {}) do opts[k] = v end
  assert(jwt.configure(opts))
end

local function rejects(token, code)
  local claims, err, got = jwt.verify(token)
  assert.is_nil(claims)
  assert.is_string(err)
  assert.are.equal(code, got)
end

describe("jwt.verify with a JWKS (EdDSA, RS256, ES256)", function()
  before_each(function() configure_jwks() end)

  it("accepts a valid EdDSA token and returns its claims", function()
    local claims, err = jwt.verify(T.eddsa_valid)
    assert.is_nil(err)
    assert.are.equal("user-1", claims.sub)
    assert.are.equal(F.issuer, claims.iss)
    assert.are.equal("u1@example.test", claims.email)
    assert.are.equal("integer", math.type(claims.exp))
  end)

  it("accepts a valid RS256 token", function()
    assert.are.equal("user-1", assert(jwt.verify(T.rs256_valid)).sub)
  end)

  it("accepts a valid ES256 token (raw r||s signature)", function()
    assert.are.equal("user-1", assert(jwt.verify(T.es256_valid)).sub)
  end)

  it("accepts an audience array containing the configured audience", function()
    assert.is_table(jwt.verify(T.aud_array_valid))
  end)

  it("accepts a token expired less than the skew ago", function()
    assert.is_table(jwt.verify(T.within_skew))
  end)

  it("rejects it with no skew", function()
    configure_jwks { skew = 0 }
    rejects(T.within_skew, "expired")
  end)

  it("lists the kids it holds, skipping symmetric keys", function()
    assert.are.same({ "ed1", "rsa1", "ec1" }, jwt.kids())
  end)

  it("rejects time claims out of range", function()
    rejects(T.expired, "expired")
    rejects(T.not_yet_valid, "not_yet_valid")
    rejects(T.iat_future, "not_yet_valid")
  end)

  it("rejects a wrong or missing issuer", function()
    rejects(T.wrong_issuer, "bad_issuer")
    rejects(T.missing_issuer, "bad_issuer")
  end)

  it("does not check the issuer when none is configured", function()
    assert(jwt.configure { jwks = F.jwks, audience = F.audience })
    assert.is_table(jwt.verify(T.wrong_issuer))
  end)

  it("rejects a wrong audience", function()
    rejects(T.wrong_audience, "bad_audience")
    rejects(T.wrong_audience_array, "bad_audience")
  end)

  it("accepts any audience from a configured list", function()
    configure_jwks { audience = { "other-api", "x" } }
    assert.is_table(jwt.verify(T.wrong_audience))
  end)

  it("rejects bad signatures", function()
    rejects(T.tampered_payload, "bad_signature")
    rejects(T.eddsa_wrong_key, "bad_signature")
    rejects(T.rs256_wrong_key, "bad_signature")
    rejects(T.es256_wrong_key, "bad_signature")
    rejects(T.es256_der_signature, "bad_signature")
  end)

  it("rejects alg none in every spelling", function()
    rejects(T.alg_none, "alg_not_allowed")
    rejects(T.alg_none_kid, "alg_not_allowed")
    rejects(T.alg_None_caps, "alg_not_allowed")
  end)

  it("rejects HS256 when only a JWKS is configured", function()
    rejects(T.hs256_valid, "alg_not_allowed")
  end)

  it("rejects HS256 signed with the public key as secret (algorithm confusion)", function()
    rejects(T.confusion_rsa_pem, "alg_not_allowed")
    rejects(T.confusion_ed_raw, "alg_not_allowed")
    -- Even with a dev secret the JWKS keys never serve as HMAC secrets.
    configure_jwks { dev_secret = F.dev_secret }
    rejects(T.confusion_rsa_pem, "bad_signature")
    rejects(T.confusion_ed_raw, "bad_signature")
  end)

  it("rejects a header alg that does not match the key for its kid", function()
    rejects(T.alg_mismatch_rs_on_ed, "alg_not_allowed")
    rejects(T.alg_mismatch_ed_on_ec, "alg_not_allowed")
    rejects(T.alg_unsupported, "alg_not_allowed")
  end)

  it("rejects an unknown kid, and a missing kid when several keys exist", function()
    rejects(T.unknown_kid, "unknown_kid")
    rejects(T.no_kid, "unknown_kid")
  end)

  it("accepts a kid-less token when the JWKS holds a single key", function()
    configure_jwks { jwks = F.jwks_single }
    assert.is_table(jwt.verify(T.no_kid))
  end)

  it("picks up rotated keys with set_jwks, and keeps the old set on bad input", function()
    rejects(T.rotated, "unknown_kid")
    assert.is_true(jwt.set_jwks(F.jwks_rotated))
    assert.is_table(jwt.verify(T.rotated))
    assert.is_table(jwt.verify(T.eddsa_valid))
    rejects(T.rs256_valid, "unknown_kid")
    local ok, err = jwt.set_jwks("{not json")
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_nil(jwt.set_jwks('{"keys":[]}'))
    assert.is_nil(jwt.set_jwks('{"keys":[{"kty":"oct","k":"AAAA"}]}'))
    assert.is_table(jwt.verify(T.rotated))
  end)

  it("rejects malformed tokens", function()
    for _, name in ipairs { "too_many_segments", "two_segments", "header_array",
      "header_not_json", "bad_base64", "padded_base64", "alg_missing", "crit_header",
      "payload_not_json", "payload_array", "missing_exp", "exp_not_number" } do
      local claims, _, code = jwt.verify(T[name])
      assert.is_nil(claims, name)
      assert.are.equal("malformed", code, name)
    end
  end)

  it("rejects garbage strings as malformed", function()
    for _, s in ipairs { "", ".", "..", "...", "a.b.c", "abc", "a.b.c.d.e", "\0.\0.\0",
      "eyJhbGciOiJFZERTQSJ9..", string.rep("A", 20000), "ey.ey.ey", "é.é.é" } do
      local claims, err, code = jwt.verify(s)
      assert.is_nil(claims)
      assert.is_string(err)
      assert.are.equal("malformed", code, s:sub(1, 40))
    end
  end)

  it("raises on a non-string token", function()
    assert.has_error(function() jwt.verify(nil) end)
    assert.has_error(function() jwt.verify({}) end)
  end)
end)

describe("jwt.verify with a dev secret", function()
  before_each(function()
    assert(jwt.configure { dev_secret = F.dev_secret, issuer = F.issuer, audience = F.audience })
  end)

  it("accepts an HS256 token signed with the dev secret", function()
    assert.are.equal("user-1", assert(jwt.verify(T.hs256_valid)).sub)
  end)

  it("rejects a wrong secret and an expired token", function()
    rejects(T.hs256_wrong_secret, "bad_signature")
    rejects(T.expired_hs256, "expired")
  end)

  it("answers no_keys for asymmetric tokens when no JWKS is configured", function()
    rejects(T.eddsa_valid, "no_keys")
    rejects(T.alg_none, "alg_not_allowed")
  end)

  it("verifies what sign_hs256 makes, and the signer agrees on the bytes", function()
    local now = os.time()
    local tok = jwt.sign_hs256({ sub = "u2", iss = F.issuer, aud = F.audience,
      iat = now, exp = now + 60 }, F.dev_secret)
    local claims = assert(jwt.verify(tok))
    assert.are.equal("u2", claims.sub)
    assert.are.equal(now + 60, claims.exp)
    -- The same header and payload bytes signed by python give the same MAC.
    local h, p, s = tok:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local crypto = require "crypto"
    local mac = crypto.base64url_encode(crypto.hmac_sha256(F.dev_secret, h .. "." .. p))
    assert.are.equal(mac, s)
  end)
end)

describe("jwt with nothing configured", function()
  before_each(function() assert(jwt.configure {}) end)

  it("answers no_keys", function()
    rejects(T.eddsa_valid, "no_keys")
    rejects(T.hs256_valid, "no_keys")
    assert.are.same({}, jwt.kids())
  end)

  it("raises on bad configuration", function()
    assert.has_error(function() jwt.configure { skew = -1 } end)
    assert.has_error(function() jwt.configure { audience = 5 } end)
    assert.has_error(function() jwt.configure { dev_secret = "" } end)
    assert.has_error(function() jwt.configure { issuer = {} } end)
    assert.has_error(function() jwt.sign_hs256({ sub = "x" }, "") end)
  end)

  it("returns nil, err for an unusable JWKS and keeps its state", function()
    local ok, err = jwt.configure { jwks = "[]" }
    assert.is_nil(ok)
    assert.is_string(err)
  end)
end)

describe("auth facade", function()
  local auth = require "auth"

  after_each(function() auth._reset() end)

  it("extracts bearer tokens", function()
    assert.are.equal("abc.def-_.g", auth.bearer { authorization = "Bearer abc.def-_.g" })
    assert.are.equal("t0k==", auth.bearer { Authorization = "bearer t0k==" })
    assert.are.equal("x", auth.bearer { ["AUTHORIZATION"] = "  BEARER x  " })
    assert.is_nil(auth.bearer { authorization = "Basic dXNlcjpw" })
    assert.is_nil(auth.bearer { authorization = "Bearer" })
    assert.is_nil(auth.bearer { authorization = "Bearer a b" })
    assert.is_nil(auth.bearer {})
    assert.is_nil(auth.bearer(nil))
  end)

  it("verifies with an explicit JWKS and dev secret", function()
    assert(auth.configure { jwks = F.jwks, dev_secret = F.dev_secret, issuer = F.issuer,
      audience = F.audience })
    assert.are.equal("user-1", assert(auth.verify(T.eddsa_valid)).sub)
    assert.are.equal("user-1", assert(auth.verify(T.hs256_valid)).sub)
    local claims, err, code = auth.verify(T.expired)
    assert.is_nil(claims)
    assert.is_string(err)
    assert.are.equal("expired", code)
    assert.has_error(function() auth.verify(nil) end)
  end)

  it("reads a JWKS file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(F.jwks)
    f:close()
    assert(auth.configure { jwks_file = path, issuer = F.issuer, audience = F.audience })
    os.remove(path)
    assert.is_table(auth.verify(T.es256_valid))
    rejects(T.hs256_valid, "alg_not_allowed")
  end)

  it("refuses every token when misconfigured, without raising", function()
    assert.is_nil(auth.configure { jwks_file = "/nonexistent/jwks.json" })
    local claims, _, code = auth.verify(T.eddsa_valid)
    assert.is_nil(claims)
    assert.are.equal("no_keys", code)
    assert.is_nil(auth.configure { jwks = F.jwks, skew = -5 })
  end)

  describe("with AUTH_JWKS_URL", function()
    local SERVER = [=[
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
path = sys.argv[1]
hits = 0
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        global hits
        if self.path == "/count":
            body = str(hits).encode()
        else:
            hits += 1
            with open(path, "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.handle_error = lambda *a: None
print(os.getpid(), srv.server_address[1], flush=True)
srv.serve_forever()
]=]
    local proc, pid, base, script, jwks_path

    local function serve(jwks)
      local f = assert(io.open(jwks_path, "w"))
      f:write(jwks)
      f:close()
    end

    local function hits()
      return tonumber(assert(require("http").get(base .. "/count")).body)
    end

    setup(function()
      script, jwks_path = os.tmpname(), os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(SERVER)
      f:close()
      serve(F.jwks_single)
      proc = assert(io.popen("exec python3 " .. script .. " " .. jwks_path, "r"))
      local port
      pid, port = assert(proc:read("l")):match("^(%d+) (%d+)$")
      base = "http://127.0.0.1:" .. port
    end)

    teardown(function()
      if pid then os.execute("kill " .. pid) end
      if proc then proc:close() end
      os.remove(script)
      os.remove(jwks_path)
    end)

    it("fetches on first use and refetches on an unknown kid, rate-limited", function()
      serve(F.jwks_single)
      assert(auth.configure { jwks_url = base .. "/jwks", issuer = F.issuer,
        audience = F.audience, refetch_interval = 0 })
      assert.are.equal(0, hits())
      assert.is_table(auth.verify(T.eddsa_valid))
      assert.are.equal(1, hits())
      assert.is_table(auth.verify(T.eddsa_valid))
      assert.are.equal(1, hits())
      -- Key rotation: the new kid is not known yet, so the JWKS is refetched.
      serve(F.jwks_rotated)
      assert.is_table(auth.verify(T.rotated))
      assert.are.equal(2, hits())
      assert.are.same({ "ed2", "ed1" }, jwt.kids())
      -- With the default interval, a flood of unknown kids fetches at most once
      -- a minute.
      assert(auth.configure { jwks = F.jwks_rotated, jwks_url = base .. "/jwks",
        issuer = F.issuer, audience = F.audience })
      local n = hits()
      for _ = 1, 5 do
        local claims, _, code = auth.verify(T.unknown_kid)
        assert.is_nil(claims)
        assert.are.equal("unknown_kid", code)
      end
      assert.is_true(hits() - n <= 1)
    end)

    it("answers no_keys when the JWKS cannot be fetched", function()
      assert(auth.configure { jwks_url = "http://127.0.0.1:1/jwks", refetch_interval = 0 })
      local claims, err, code = auth.verify(T.eddsa_valid)
      assert.is_nil(claims)
      assert.is_string(err)
      assert.are.equal("no_keys", code)
    end)
  end)
end)

-- The crypto primitive: known-answer vectors (FIPS 180-2, RFC 4231, RFC 4648)
-- and the format and ordering guarantees of the UUIDs.
local crypto = require "crypto"

describe("crypto", function()
  it("random_bytes returns n bytes and differs between calls", function()
    assert.are.equal(0, #crypto.random_bytes(0))
    assert.are.equal(32, #crypto.random_bytes(32))
    assert.are_not.equal(crypto.random_bytes(16), crypto.random_bytes(16))
    assert.has_error(function() crypto.random_bytes(-1) end)
    assert.has_error(function() crypto.random_bytes(2 * 1024 * 1024) end)
    assert.has_error(function() crypto.random_bytes("x") end)
  end)

  it("sha256 matches FIPS 180-2 vectors", function()
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      crypto.hex(crypto.sha256("abc")))
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      crypto.hex(crypto.sha256("")))
  end)

  it("hmac_sha256 matches RFC 4231 test cases 1 and 2", function()
    assert.are.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      crypto.hex(crypto.hmac_sha256(string.rep("\x0b", 20), "Hi There")))
    assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      crypto.hex(crypto.hmac_sha256("Jefe", "what do ya want for nothing?")))
    assert.are.equal(32, #crypto.hmac_sha256("", ""))
  end)

  it("hex is lowercase, two characters per byte", function()
    assert.are.equal("", crypto.hex(""))
    assert.are.equal("00ff10ab", crypto.hex("\0\255\16\171"))
  end)

  it("base64url encodes RFC 4648 vectors without padding", function()
    local vectors = { [""] = "", f = "Zg", fo = "Zm8", foo = "Zm9v", foob = "Zm9vYg",
      fooba = "Zm9vYmE", foobar = "Zm9vYmFy", ["\251\255"] = "-_8" }
    for plain, enc in pairs(vectors) do
      assert.are.equal(enc, crypto.base64url_encode(plain))
      assert.are.equal(plain, crypto.base64url_decode(enc))
    end
  end)

  it("base64url round-trips random bytes of every length", function()
    for n = 0, 70 do
      local s = crypto.random_bytes(n)
      assert.are.equal(s, crypto.base64url_decode(crypto.base64url_encode(s)))
    end
  end)

  it("base64url_decode refuses what is not strict base64url", function()
    for _, bad in ipairs { "Zg==", "Zm9v+", "Zm9v/", "Z", "Zm9vY", "Zm 9v", "Zh", "Zm9=",
      "\0" } do
      local v, err = crypto.base64url_decode(bad)
      assert.is_nil(v, bad)
      assert.is_string(err)
    end
  end)

  it("uuid_v4 has the version and variant bits", function()
    local seen = {}
    for _ = 1, 200 do
      local u = crypto.uuid_v4()
      assert.truthy(u:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$"), u)
      assert.are.equal(36, #u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)

  it("uuid_v7 carries the time and sorts in creation order", function()
    local before = os.time()
    local prev = crypto.uuid_v7()
    for _ = 1, 5000 do
      local u = crypto.uuid_v7()
      assert.truthy(u:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x+$"), u)
      assert.is_true(u > prev, prev .. " !< " .. u)
      prev = u
    end
    local ms = tonumber(prev:sub(1, 8) .. prev:sub(10, 13), 16)
    assert.is_true(ms // 1000 >= before - 1 and ms // 1000 <= os.time() + 1)
  end)

  it("constant_time_eq compares content and length", function()
    assert.is_true(crypto.constant_time_eq("", ""))
    assert.is_true(crypto.constant_time_eq("abc", "abc"))
    assert.is_false(crypto.constant_time_eq("abc", "abd"))
    assert.is_false(crypto.constant_time_eq("abc", "abcd"))
    assert.is_false(crypto.constant_time_eq("abcd", "abc"))
    assert.is_false(crypto.constant_time_eq("", "a"))
    assert.has_error(function() crypto.constant_time_eq("a") end)
  end)
end)

-- crypto.aead_seal / aead_open: AES-256-GCM through OpenSSL's EVP interface (random
-- 96-bit nonce, 128-bit tag, nonce .. ciphertext .. tag), checked against the GCM
-- specification's test case 15 and for every way a sealed text can be wrong.
local crypto = require "crypto"

local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end

describe("crypto aead", function()
  local key = unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")

  it("opens the GCM specification's test case 15 (AES-256, 96-bit nonce)", function()
    local nonce = unhex("cafebabefacedbaddecaf888")
    local ct = unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      .. "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad")
    local tag = unhex("b094dac5d93471bdec1a502270e3cc6c")
    local plain = unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      .. "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
    assert.are.equal(plain, crypto.aead_open(key, nonce .. ct .. tag))
  end)

  it("seals with a fresh nonce each time and opens it back, with and without aad", function()
    local a = crypto.aead_seal(key, "whsec_abc", "user-1")
    local b = crypto.aead_seal(key, "whsec_abc", "user-1")
    assert.are.equal(12 + 9 + 16, #a)
    assert.are_not.equal(a, b)
    assert.is_nil(a:find("whsec_abc", 1, true))
    assert.are.equal("whsec_abc", crypto.aead_open(key, a, "user-1"))
    assert.are.equal("whsec_abc", crypto.aead_open(key, b, "user-1"))
    assert.are.equal("", crypto.aead_open(key, crypto.aead_seal(key, "")))
  end)

  it("refuses a wrong key, a wrong aad, an altered or a short text", function()
    local sealed = crypto.aead_seal(key, "whsec_abc", "user-1")
    local other = string.rep("k", 32)
    local v, err = crypto.aead_open(other, sealed, "user-1")
    assert.is_nil(v)
    assert.are.equal("authentication failed", err)
    assert.is_nil((crypto.aead_open(key, sealed, "user-2")))
    assert.is_nil((crypto.aead_open(key, sealed)))
    for i = 1, #sealed do
      local flipped = sealed:sub(1, i - 1) .. string.char(sealed:byte(i) ~ 1) .. sealed:sub(i + 1)
      assert.is_nil((crypto.aead_open(key, flipped, "user-1")), "byte " .. i)
    end
    v, err = crypto.aead_open(key, "short")
    assert.is_nil(v)
    assert.are.equal("sealed text too short", err)
  end)

  it("raises on a key that is not 32 bytes", function()
    assert.has_error(function() crypto.aead_seal("short", "x") end)
    assert.has_error(function() crypto.aead_open(string.rep("k", 31), string.rep("x", 40)) end)
  end)
end)

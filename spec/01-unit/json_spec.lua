-- The json primitive's encoder around lua-cjson: '/' written bare, tables marked with
-- json.array (also empty ones) as arrays, everything else as cjson writes it, and the
-- text always decodes back to the same value.
local json = require "json"

describe("json.encode", function()
  it("writes '/' unescaped, also next to escaped backslashes", function()
    assert.are.equal('"Europe/Paris"', json.encode("Europe/Paris"))
    assert.are.equal('"a\\\\/b"', json.encode("a\\/b")) -- backslash, then slash
    assert.are.equal('"\\\\\\\\/"', json.encode("\\\\/"))
    assert.are.equal('"/\\"/"', json.encode('/"/'))
  end)

  it("writes empty marked arrays as [] and unmarked empty tables as {}", function()
    assert.are.equal("[]", json.encode(json.array({})))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal('{"a":[]}', json.encode({ a = json.array({}) }))
    assert.are.equal('[[],[[]],{}]', json.encode(json.array({ json.array({}), json.array({ json.array({}) }), {} })))
  end)

  it("handles empty arrays and slashes mixed in one document", function()
    local v = json.array({})
    for i = 1, 50 do
      v[i] = { zone = "America/Argentina/Buenos_Aires", tags = json.array({}), n = i, path = "\\/" .. i }
    end
    local text = json.encode(v)
    assert.is_nil(text:find('[^\\]\\/'))
    local back = json.decode(text)
    assert.are.equal(50, #back)
    for i = 1, 50 do
      assert.are.equal("America/Argentina/Buenos_Aires", back[i].zone)
      assert.are.equal("\\/" .. i, back[i].path)
      assert.are.equal(0, #back[i].tags)
      assert.are.equal("[]", json.encode(back[i].tags))
      assert.are.equal(i, back[i].n)
    end
  end)

  it("round-trips strings with every escape", function()
    local s = "q\"b\\s/\n\r\t\1\31 é 日本 \u{1F600}"
    assert.are.equal(s, json.decode(json.encode(s)))
    assert.are.equal(s, json.decode(json.encode({ s }))[1])
  end)

  it("leaves the encoded value unchanged (the sentinels are removed)", function()
    local t = { a = json.array({}), b = { c = json.array({}) } }
    json.encode(t)
    assert.is_nil(t.a[1])
    assert.is_nil(t.b.c[1])
    assert.are.equal('{"c":[]}', json.encode(t.b))
  end)
end)

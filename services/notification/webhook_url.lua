--- Which webhook URLs a user may set. https only; http only to a loopback address in
-- development (NOTIFY_WEBHOOK_DEV=1, which also allows https to loopback); addresses of
-- private, loopback, link-local and similar ranges are refused unless
-- NOTIFY_WEBHOOK_ALLOW_PRIVATE=1. IP literals are checked here, when the URL is set; a
-- host name is checked when a delivery connects (`connect_policy`, the http client's
-- `deny_private`: the address actually connected to, so a name resolving, or later
-- re-resolving, to a private address is refused then). No user name or password in the
-- URL, no fragment, at most 2048 characters. Pure Lua.
-- @module notification.webhook_url

local M = {}

M.MAX = 2048

local function flag(name)
  local v = os.getenv(name)
  return v == "1" or v == "true" or v == "yes"
end

local function ipv4(host)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local parts = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  for _, p in ipairs(parts) do
    if p > 255 then return nil end
  end
  return parts
end

-- "loopback", "private" or nil (public) for an IPv4 address.
local function v4_kind(p)
  local a, b = p[1], p[2]
  if a == 127 then return "loopback" end
  if a == 0 or a == 10 or (a == 172 and b >= 16 and b <= 31) or (a == 192 and b == 168)
    or (a == 169 and b == 254) or (a == 100 and b >= 64 and b <= 127) or a >= 224
    or (a == 192 and b == 0 and p[3] == 0) or (a == 198 and (b == 18 or b == 19)) then
    return "private"
  end
  return nil
end

-- Same for an IPv6 literal (without brackets).
local function v6_kind(h)
  h = h:lower()
  if not h:match("^[%x:%.]+$") or not h:find(":", 1, true) then return "invalid" end
  if h == "::1" then return "loopback" end
  if h == "::" then return "private" end
  local mapped = h:match("^::ffff:(%d+%.%d+%.%d+%.%d+)$")
  if mapped then
    local p = ipv4(mapped)
    return p and (v4_kind(p) or "public") or "invalid"
  end
  local first = h:match("^(%x+):") or ""
  local n = tonumber(first, 16) or 0
  if #first == 4 and (n >= 0xfc00 and n <= 0xfdff) then return "private" end -- unique local
  if #first == 4 and (n >= 0xfe80 and n <= 0xfebf) then return "private" end -- link-local
  if first:match("^ff") and #first == 4 then return "private" end -- multicast
  return "public"
end

--- How a delivery may connect (options of http.request): private and reserved
-- addresses refused unless NOTIFY_WEBHOOK_ALLOW_PRIVATE=1, loopback allowed with
-- NOTIFY_WEBHOOK_DEV=1, and the test-only name pins of NOTIFY_WEBHOOK_RESOLVE
-- ("host:port:address", comma separated).
-- @treturn table `{deny_private =, allow_loopback =, resolve = array | nil}`
function M.connect_policy()
  local resolve
  for pin in (os.getenv("NOTIFY_WEBHOOK_RESOLVE") or ""):gmatch("[^,%s]+") do
    resolve = resolve or {}
    resolve[#resolve + 1] = pin
  end
  return {
    deny_private = not flag("NOTIFY_WEBHOOK_ALLOW_PRIVATE"),
    allow_loopback = flag("NOTIFY_WEBHOOK_DEV"),
    resolve = resolve,
  }
end

--- Check a webhook URL.
-- @param url the value sent
-- @treturn[1] string the URL
-- @treturn[2] nil
-- @treturn[2] string what is wrong, for a person
function M.check(url)
  if type(url) ~= "string" then return nil, "webhook_url must be a string URL, or null to remove the webhook" end
  if #url > M.MAX then return nil, "webhook_url must be at most " .. M.MAX .. " characters" end
  if url:find("[%s%c\128-\255]") then return nil, "webhook_url must not contain spaces or control characters" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "webhook_url must be an absolute https:// URL" end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then return nil, "webhook_url must use https" end
  if url:find("#", 1, true) then return nil, "webhook_url must not have a fragment (#...)" end
  local authority = rest:match("^([^/?]*)")
  if authority == "" then return nil, "webhook_url has no host" end
  if authority:find("@", 1, true) then
    return nil, "webhook_url must not carry a user name or password"
  end
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  local kind
  if host then
    kind = v6_kind(host)
    if kind == "invalid" then return nil, "webhook_url has an invalid IPv6 address" end
    if kind == "public" then kind = nil end
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
    if not host then return nil, "webhook_url has an invalid host or port" end
    host = host:lower()
    local p = ipv4(host)
    if p then
      kind = v4_kind(p)
    elseif host:match("^[%d.]+$") or host:match("^0x") or host:match("%.0x") then
      return nil, "webhook_url: write an IPv4 address as four decimal numbers (like 203.0.113.7)"
    elseif not host:match("^[%w.-]+$") or host:match("^[.-]") or host:find("..", 1, true) then
      return nil, "webhook_url has an invalid host name"
    elseif host == "localhost" or host:match("%.localhost%.?$") then
      kind = "loopback"
    elseif not host:find(".", 1, true) then
      return nil, "webhook_url needs a fully qualified host name (like hooks.example.com)"
    end
  end
  if port ~= "" and (#port > 5 or tonumber(port) < 1 or tonumber(port) > 65535) then
    return nil, "webhook_url has an invalid port"
  end
  local dev = flag("NOTIFY_WEBHOOK_DEV")
  if kind == "loopback" and not dev and not flag("NOTIFY_WEBHOOK_ALLOW_PRIVATE") then
    return nil, "webhook_url points at a loopback address, which is refused here"
  end
  if kind == "private" and not flag("NOTIFY_WEBHOOK_ALLOW_PRIVATE") then
    return nil, "webhook_url points at a private or reserved address, which is refused here"
  end
  if scheme == "http" and not (dev and kind == "loopback") then
    return nil, "webhook_url must use https (http is allowed only to a loopback address in development)"
  end
  return url
end

return M

-- bench/ws/tokens.lua: development tokens for the WebSocket benchmark, one a line.
-- `AUTH_DEV_SECRET=... todo-host script bench/ws/tokens.lua N PREFIX` prints tokens for
-- the users PREFIX1 .. PREFIXN (valid for a day).
local jwt = require "jwt"

local n, prefix = tonumber(arg[1]) or 1, arg[2] or "wsb"
local secret = assert(os.getenv("AUTH_DEV_SECRET"), "AUTH_DEV_SECRET is not set")
local now = os.time()
for i = 1, n do
  print(jwt.sign_hs256({ sub = prefix .. i, iat = now, exp = now + 86400 }, secret))
end

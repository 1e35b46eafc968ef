--- Edge guards shared by HTTP handlers: the bearer-token check that sets `req.user`,
-- (after the per-address rate limit, RATE_LIMIT_PER_ADDRESS_PER_SECOND, and followed by
-- the per-user one, RATE_LIMIT_PER_SECOND, of web.ratelimit when they are set),
-- and the JSON body check (415 for another content type, 400 for malformed JSON).
-- @module web.guard

local errors = require "web.errors"
local ratelimit = require "web.ratelimit"

local M = {}

--- Wrap a handler so that it runs only with a valid bearer token.
-- The wrapped handler receives `req` with `req.user` (the token's `sub`) and
-- `req.claims` set; without a valid token the answer is 401 with `WWW-Authenticate`;
-- over the client address's or the user's rate limit, 429 with `Retry-After`. The
-- address is counted first, so bad tokens from one address are limited too.
-- @tparam function handler `function(req) return status, body, headers end`
-- @tparam[opt] table auth the auth module (defaults to `require "auth"`)
-- @treturn function the guarded handler
function M.authenticated(handler, auth)
  return function(req)
    local limited, body, headers = ratelimit.check_address(req.client_address)
    if limited then return limited, body, headers end
    auth = auth or require "auth"
    local token = auth.bearer(req.headers or {})
    if not token then return errors.unauthorized() end
    local claims, err = auth.verify(token)
    if not claims then return errors.unauthorized(err or "invalid token") end
    local sub = claims.sub
    if type(sub) ~= "string" or sub == "" or #sub > 255 then
      return errors.unauthorized("the token has no usable subject")
    end
    limited, body, headers = ratelimit.check(sub)
    if limited then return limited, body, headers end
    req.user = sub
    req.claims = claims
    return handler(req)
  end
end

local function is_json_type(ct)
  local mime = ct:match("^%s*([^;%s]+)")
  if not mime then return false end
  mime = mime:lower()
  return mime == "application/json" or (mime:match("^application/[%w%.%-]+%+json$") ~= nil)
end

--- Read the request body as JSON.
-- @tparam table req the request
-- @tparam[opt=false] boolean optional an empty body is allowed (returns `{}`)
-- @return the decoded value, or nil, status, body, headers (an error response)
function M.json_body(req, optional)
  local body = req.body
  if body == nil or body == "" then
    if optional then return {} end
    local ct = req.headers and req.headers["content-type"]
    if ct and not is_json_type(ct) then return nil, errors.unsupported_media_type(ct) end
    return nil, errors.bad_json("the body is empty; send a JSON object")
  end
  local ct = req.headers and req.headers["content-type"]
  if not ct or not is_json_type(ct) then
    return nil, errors.unsupported_media_type(ct)
  end
  local value, err
  if req.json then
    value, err = req:json()
  else
    value, err = require("json").decode(body)
  end
  if value == nil then return nil, errors.bad_json(err) end
  return value
end

M.is_json_type = is_json_type

return M

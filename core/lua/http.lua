--- Outbound HTTP client (module "http").
-- Non-blocking: a request suspends the calling coroutine (a request handler,
-- event delivery, job or script) and the loop resumes it when the response
-- arrives. One connection pool per worker process, so calls to the same host
-- (the Dapr sidecar, the identity provider) reuse kept-alive connections.
-- Cannot be used at module top level (no yield there).
-- @module http
local core = require "http.core"

local http = {}

local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true,
  DELETE = true, OPTIONS = true }

local function copy_headers(headers)
  if headers == nil then return nil end
  if type(headers) ~= "table" then error("http: headers must be a table", 3) end
  local out = {}
  for name, value in pairs(headers) do
    if type(name) ~= "string" then error("http: header names must be strings", 3) end
    local t = type(value)
    if t == "number" or t == "boolean" then
      value = tostring(value)
    elseif t ~= "string" then
      error("http: header '" .. name .. "' must be a string", 3)
    end
    out[name] = value
  end
  return out
end

--- Send a request and wait for the response.
-- @tparam table opts
--   `url` (string, http or https), `method` (default "GET"),
--   `headers` ({name = value}), `body` (string), `timeout` (seconds, default 30),
--   `max_body` (bytes, default 8 MiB), `follow_redirects` (default false),
--   `deny_private` (default false: true refuses, at connect time, every private,
--   loopback, link-local and reserved address, whatever name resolved to it; for URLs
--   a user gave), `allow_loopback` (with deny_private: 127/8 and ::1 still allowed;
--   development), `resolve` (array of "host:port:address" pinning a name; tests)
-- @treturn table `{status = integer, headers = {lowercase name = value}, body = string}`
--   for any HTTP status (a 500 is a response, not an error)
-- @return or nil, message, code: "timeout", "connect", "resolve", "tls",
--   "too_large", "bad_url", "redirects", "refused" (deny_private) or "io"
function http.request(opts)
  if type(opts) ~= "table" then error("http.request: opts must be a table", 2) end
  if type(opts.url) ~= "string" or not opts.url:match("^[hH][tT][tT][pP][sS]?://") then
    error("http.request: url must be an http:// or https:// URL", 2)
  end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not METHODS[method:upper()] then
    error("http.request: unsupported method " .. tostring(method), 2)
  end
  if opts.body ~= nil and type(opts.body) ~= "string" then
    error("http.request: body must be a string", 2)
  end
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout <= 0) then
    error("http.request: timeout must be a positive number of seconds", 2)
  end
  return core.request {
    url = opts.url,
    method = method:upper(),
    headers = copy_headers(opts.headers),
    body = opts.body,
    timeout = opts.timeout,
    max_body = opts.max_body,
    follow_redirects = opts.follow_redirects,
    deny_private = opts.deny_private,
    allow_loopback = opts.allow_loopback,
    resolve = opts.resolve,
  }
end

local function with(opts, fields)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  for k, v in pairs(fields) do o[k] = v end
  return o
end

--- GET a URL.
-- @tparam string url
-- @tparam[opt] table opts as for `request` (headers, timeout, ...)
-- @return as `request`
function http.get(url, opts)
  return http.request(with(opts, { method = "GET", url = url }))
end

--- POST a body to a URL.
-- @tparam string url
-- @tparam string body
-- @tparam[opt] table opts as for `request` (set `headers["content-type"]`)
-- @return as `request`
function http.post(url, body, opts)
  return http.request(with(opts, { method = "POST", url = url, body = body }))
end

return http

--- Authentication facade (module "auth"): verifies the bearer JWTs the API
-- receives, against the identity provider's JWKS (Better Auth) or, in local
-- development, an HS256 dev secret.
--
-- Configured once per process from the environment, lazily on first use:
--
-- * `AUTH_JWKS_FILE`: a JWKS document on disk;
-- * `AUTH_JWKS_URL`: fetched on first use, refetched when a token names an
--   unknown kid (at most once a minute per process: key rotation);
-- * `AUTH_DEV_SECRET`: accept HS256 tokens signed with it (`todo-host token`);
-- * `AUTH_ISSUER`, `AUTH_AUDIENCE` (comma-separated list allowed): checked
--   when set;
-- * `AUTH_CLOCK_SKEW`: seconds of tolerance on exp / nbf / iat (default 60).
--
-- Fetching needs a work coroutine, so nothing happens at module load.
-- @module auth
local jwt = require "jwt"

local auth = {}

local REFETCH_INTERVAL = 60 -- seconds between refetches on an unknown kid
local RETRY_EMPTY = 5       -- seconds between attempts while no key is held
local FETCH_TIMEOUT = 5     -- seconds
local WAIT_STEP = 0.05      -- seconds, while another coroutine fetches

-- Per Lua state: nil until configured. The keys themselves, and the fetch
-- rate limit, are process-wide in the jwt primitive (shared by the bundle
-- states of a worker).
local state

local function log(level, msg, fields)
  local ok, l = pcall(require, "log")
  if ok and type(l) == "table" and l[level] then l[level](msg, fields) end
end

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function env_options()
  local audience = env("AUTH_AUDIENCE")
  if audience and audience:find(",", 1, true) then
    local list = {}
    for a in audience:gmatch("[^,%s]+") do list[#list + 1] = a end
    audience = list
  end
  local skew = env("AUTH_CLOCK_SKEW")
  return {
    jwks_file = env("AUTH_JWKS_FILE"),
    jwks_url = env("AUTH_JWKS_URL"),
    dev_secret = env("AUTH_DEV_SECRET"),
    issuer = env("AUTH_ISSUER"),
    audience = audience,
    skew = skew and (tonumber(skew) or skew) or nil,
  }
end

--- Configure verification explicitly (tests, tools). Without a call, the
-- first `verify` configures from the environment (once per process: a second
-- bundle state finds the keys already there).
-- @tparam[opt] table opts `jwks` (JSON text), `jwks_file`, `jwks_url`,
--   `dev_secret`, `issuer`, `audience` (string or list), `skew` (seconds),
--   `refetch_interval` (seconds, default 60); nil reads the environment
-- @treturn boolean true, or nil, message (verification then answers `no_keys`)
function auth.configure(opts)
  local from_env = opts == nil
  opts = opts or env_options()
  state = { url = opts.jwks_url, refetch_interval = opts.refetch_interval or REFETCH_INTERVAL }
  -- Another bundle state of this process already configured the keys.
  if from_env and jwt.status().configured then return true end
  if opts.dev_secret then
    log("warn", "auth: AUTH_DEV_SECRET is set; HS256 dev tokens are accepted", {})
  end
  local ok, done, err = pcall(jwt.configure, {
    jwks = opts.jwks, jwks_file = opts.jwks_file, dev_secret = opts.dev_secret,
    issuer = opts.issuer, audience = opts.audience, skew = opts.skew,
  })
  if not ok then err = done end -- raised: a bad setting
  if not (ok and done) then
    -- Misconfiguration must not crash every request: log it, refuse tokens.
    state.error = "auth misconfigured: " .. tostring(err)
    log("error", state.error, {})
    return nil, state.error
  end
  if not (opts.jwks or opts.jwks_file or opts.jwks_url or opts.dev_secret) then
    log("warn", "auth: no AUTH_JWKS_URL, AUTH_JWKS_FILE or AUTH_DEV_SECRET; every token is refused", {})
  end
  return true
end

-- While another coroutine of this process fetches the JWKS, wait for it
-- (bounded) instead of refusing the token or fetching twice.
local function wait_for_fetch()
  local ok, timer = pcall(require, "timer")
  if not (ok and type(timer) == "table" and timer.sleep) then return end
  local waited = 0
  while jwt.status().fetching and waited < FETCH_TIMEOUT + 1 do
    timer.sleep(WAIT_STEP)
    waited = waited + WAIT_STEP
  end
end

-- Fetch the JWKS unless a fetch is under way or one started less than
-- min_interval seconds ago (process-wide). Returns true when new keys were
-- installed, or when another coroutine's fetch finished meanwhile.
local function fetch(min_interval)
  if jwt.status().fetching then
    wait_for_fetch()
    return true
  end
  if not jwt.fetch_begin(min_interval) then return false end
  local http = require "http"
  local ok, res, err = pcall(http.get, state.url,
    { timeout = FETCH_TIMEOUT, headers = { accept = "application/json" } })
  jwt.fetch_end()
  if not ok then error(res, 0) end -- not in a work coroutine: a caller bug
  if not res then
    log("warn", "auth: JWKS fetch failed", { url = state.url, error = err })
    return false
  end
  if res.status ~= 200 then
    log("warn", "auth: JWKS fetch failed", { url = state.url, status = res.status })
    return false
  end
  local set, serr = jwt.set_jwks(res.body)
  if not set then
    log("warn", "auth: JWKS rejected", { url = state.url, error = serr })
    return false
  end
  log("info", "auth: JWKS loaded", { url = state.url, kids = table.concat(jwt.kids(), ",") })
  return true
end

-- Tokens verified lately: token -> { claims =, til = }. A hit is served until the
-- earlier of the token's exp and CACHE_TTL seconds after it was verified (so a key
-- withdrawn from the JWKS stops a cached token within CACHE_TTL). Bounded: emptied
-- when full. Callers must not modify the claims table.
local CACHE_TTL, CACHE_MAX = 30, 10000
local cache, cache_n = {}, 0

-- Store k = v in cache table t holding n entries, emptied first when full; returns the
-- table and its new count (the claims cache and the bearer memo below).
local function cache_put(t, n, k, v)
  if n >= CACHE_MAX then t, n = {}, 0 end
  t[k] = v
  return t, n + 1
end

--- Verify a token: signature against the configured keys, exp / nbf / iat,
-- issuer and audience when configured.
-- @tparam string token the compact JWT (see `bearer`)
-- @treturn table the claims (`sub` is the user id)
-- @return or nil, message, code: "malformed", "unknown_kid", "bad_signature",
--   "expired", "not_yet_valid", "bad_issuer", "bad_audience",
--   "alg_not_allowed", "no_keys"
function auth.verify(token)
  if type(token) ~= "string" then error("auth.verify: token must be a string", 2) end
  if not state then auth.configure() end
  if state.error then return nil, state.error, "no_keys" end
  local now = os.time()
  local hit = cache[token]
  if hit then
    if now < hit.til then return hit.claims end
    cache[token] = nil
    cache_n = cache_n - 1
  end
  local claims, err, code = jwt.verify(token)
  if claims then
    local til = now + CACHE_TTL
    if math.type(claims.exp) == "integer" and claims.exp < til then til = claims.exp end
    cache, cache_n = cache_put(cache, cache_n, token, { claims = claims, til = til })
    return claims
  end
  if state.url and (code == "unknown_kid" or code == "no_keys") then
    local interval = state.refetch_interval
    if code == "no_keys" then interval = math.min(RETRY_EMPTY, interval) end
    if fetch(interval) then
      claims, err, code = jwt.verify(token)
    end
  end
  return claims, err, code
end

-- Authorization values parsed lately: value -> token. Matching the b64token pattern
-- costs more than the rest of a cached verification (it is per character); a client
-- sends the same value on every request. Bounded like the claims cache.
local bearer_memo, bearer_n = {}, 0

--- The bearer token of a request's headers.
-- @tparam table headers request headers (name = value; any name case)
-- @treturn string|nil the token of `Authorization: Bearer <token>` (scheme
--   case-insensitive), or nil
function auth.bearer(headers)
  if type(headers) ~= "table" then return nil end
  local value = headers.authorization or headers.Authorization
  if value == nil then
    for name, v in pairs(headers) do
      if type(name) == "string" and name:lower() == "authorization" then
        value = v
        break
      end
    end
  end
  if type(value) ~= "string" then return nil end
  local token = bearer_memo[value]
  if token then return token end
  token = value:match("^%s*[Bb][Ee][Aa][Rr][Ee][Rr] +([%w%-%._~%+/]+=*)%s*$")
  if token then bearer_memo, bearer_n = cache_put(bearer_memo, bearer_n, value, token) end
  return token
end

--- Forget the configuration (tests): the next `verify` configures again.
function auth._reset()
  state = nil
  cache, cache_n = {}, 0
end

return auth

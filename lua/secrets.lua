--- Secrets a bundle reads at run time (an API key of another service and the like): from
-- Dapr's secrets API when BUS=dapr (`GET /v1.0/secrets/<store>/<name>`, contract
-- section 8; the store is DAPR_SECRETSTORE, default "secretstore": Kubernetes Secrets in
-- the chart, a local file in dapr/local/), else from the process environment. A value
-- read is kept for the life of the process (secrets rotate with a rollout).
-- Never log what this answers.
--
-- The database URL is not read here: the C pool needs it before any Lua runs, so the
-- host reads it at start-up (DATABASE_URL_SECRET, core/src/runtime/dapr_secret.c;
-- dapr/README.md, "Secrets").
-- @module secrets
local http = require "http"
local json = require "json"

local M = {}

local cache = {}

local function store()
  local s = os.getenv("DAPR_SECRETSTORE")
  if s == nil or s == "" then s = "secretstore" end
  return s
end

local function from_dapr(name)
  local dapr = require "bus.drivers.dapr"
  local c = dapr.config
  local headers = {}
  if c.api_token then headers["dapr-api-token"] = c.api_token end
  local url = string.format("http://%s:%d/v1.0/secrets/%s/%s", c.host, c.http_port,
    dapr.urlencode(store()), dapr.urlencode(name))
  local res, msg = http.request { method = "GET", url = url, headers = headers, timeout = c.timeout }
  if not res then return nil, "secret store unreachable: " .. tostring(msg) end
  if res.status == 204 then return nil, "no secret " .. name end
  local body = res.body ~= "" and json.decode(res.body)
  if res.status ~= 200 then
    -- local.file answers 500 ERR_SECRET_GET for an unknown name; say which, not the body
    local code = type(body) == "table" and body.errorCode or ""
    return nil, string.format("secret %s: %d %s", name, res.status, tostring(code))
  end
  if type(body) ~= "table" then return nil, "secret " .. name .. ": the answer is not a JSON object" end
  -- Kubernetes answers every key of the Secret; the convention here is one key named
  -- like the secret (local.file answers exactly that).
  local v = body[name]
  if v == nil then
    local only
    for _, x in pairs(body) do
      if only ~= nil then return nil, "secret " .. name .. " has several keys and none named " .. name end
      only = x
    end
    v = only
  end
  if type(v) ~= "string" or v == "" then return nil, "secret " .. name .. " is empty" end
  return v
end

--- Read a secret.
-- @tparam string name the secret's name in the store (e.g. "llm-api-key")
-- @tparam string env the environment variable that holds it without Dapr
--   (e.g. "LLM_API_KEY")
-- @treturn string the value; or nil, message (the message never holds the value)
function M.get(name, env)
  if cache[name] then return cache[name] end
  local v, err
  if os.getenv("BUS") == "dapr" then
    v, err = from_dapr(name)
  else
    v = os.getenv(env)
    if v == nil or v == "" then err = env .. " is not set" end
  end
  if v then cache[name] = v end
  return v, err
end

--- Forget what was read (specs).
function M.reset() cache = {} end

return M

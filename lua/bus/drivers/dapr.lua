--- The Dapr bus driver (`BUS=dapr`, the cluster): publishes CloudEvents through
-- the sidecar's publish API and gives a bundle the routes daprd calls
-- (`GET /dapr/subscribe` and one delivery route per topic; see `bus.dapr_app`).
--
-- Owns: the outbound half (app -> daprd) and the driver interface of lua/bus
-- (`routes`, `start`). The relay (`bus.dapr_relay`) calls `publish` for each
-- outbox event; nothing in this file touches the database.
--
-- Settings (environment, read when the module loads):
--   DAPR_HTTP_PORT        the sidecar's HTTP port (3500)
--   DAPR_HOST             the sidecar's address (127.0.0.1)
--   DAPR_API_TOKEN        sent as `dapr-api-token` on every call to the sidecar
--   DAPR_PUBSUB           the pubsub component for work topics ("pubsub")
--   DAPR_PUBSUB_BROADCAST the component whose consumerID is per replica ("pubsub-broadcast")
--   DAPR_PUBLISH_TIMEOUT  seconds per publish call (5)
-- @module bus.drivers.dapr
local http = require "http"
local json = require "json"
local timer = require "timer"
local log = require "log"

local M = { name = "dapr" }

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

--- Current settings (re-read by `configure`; specs change them).
M.config = {}

--- (Re)read the settings from the environment, with `overrides` on top.
-- @tparam[opt] table overrides fields of `M.config` to force
-- @treturn table the settings
function M.configure(overrides)
  local c = {
    host = env("DAPR_HOST", "127.0.0.1"),
    http_port = tonumber(env("DAPR_HTTP_PORT", "3500")),
    api_token = env("DAPR_API_TOKEN", nil),
    pubsub = env("DAPR_PUBSUB", "pubsub"),
    pubsub_broadcast = env("DAPR_PUBSUB_BROADCAST", "pubsub-broadcast"),
    timeout = tonumber(env("DAPR_PUBLISH_TIMEOUT", "5")),
    attempts = 5,      -- per publish call, for transient failures
    backoff = 0.1,     -- seconds before the 2nd attempt; doubles each time
    max_backoff = 2,
  }
  for k, v in pairs(overrides or {}) do c[k] = v end
  M.config = c
  return c
end
M.configure()

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch)
    return string.format("%%%02X", ch:byte())
  end))
end
M.urlencode = urlencode

--- Whether a name can be used as a Dapr pubsub or topic name in a URL path.
-- @tparam string s
-- @treturn boolean
function M.valid_name(s)
  return type(s) == "string" and #s > 0 and #s <= 249 and s:match("^[%w%._%-]+$") ~= nil
end

--- How the relay should treat an answer of the sidecar's publish API
-- (contract section 1): 2xx is done; 5xx (broker error), 408 and 429 are
-- transient; every other status is permanent for this configuration (400 no
-- such pubsub / bad metadata, 401 wrong `DAPR_API_TOKEN`, 403 topic scoping,
-- 404 unknown pubsub): retrying the same call cannot succeed until an operator
-- changes something.
-- @tparam integer status
-- @treturn string "ok", "transient" or "permanent"
function M.classify(status)
  if status >= 200 and status < 300 then return "ok" end
  if status >= 500 or status == 408 or status == 429 then return "transient" end
  return "permanent"
end

local function describe(res)
  local body = res.body or ""
  local decoded = body ~= "" and json.decode(body)
  if type(decoded) == "table" and decoded.errorCode then
    return string.format("%d %s: %s", res.status, tostring(decoded.errorCode), tostring(decoded.message))
  end
  return string.format("%d %s", res.status, body:sub(1, 200))
end

--- The publish URL for a topic.
-- @tparam string topic
-- @tparam[opt] string key the partition key (Kafka record key)
-- @tparam[opt] string pubsub the component (default `config.pubsub`)
-- @treturn string
function M.publish_url(topic, key, pubsub)
  local c = M.config
  local url = string.format("http://%s:%d/v1.0/publish/%s/%s", c.host, c.http_port,
    urlencode(pubsub or c.pubsub), urlencode(topic))
  if key ~= nil and key ~= "" then url = url .. "?metadata.partitionKey=" .. urlencode(key) end
  return url
end

--- The partition key of an event: `opts.key`, else the CloudEvents
-- partitioning extension `partitionkey`, else `subject`.
local function key_of(event, opts)
  local key = opts.key
  if key == nil then key = event.partitionkey end
  if key == nil then key = event.subject end
  if key ~= nil then key = tostring(key) end
  return key
end

--- Publish one CloudEvent to a topic through the sidecar.
-- The event is sent as `application/cloudevents+json`, so daprd keeps its
-- `id`, `type`, `source` and `data` (it adds `topic`, `pubsubname`, trace
-- fields). Transient failures (transport errors, 5xx, 408, 429) are retried
-- with exponential backoff up to `attempts` times; permanent ones return at
-- once. Blocks the calling coroutine only; works while the host drains.
-- @tparam string topic
-- @tparam table event a CloudEvent 1.0 (needs `id`; `specversion`, `source`,
--   `type` are added when missing)
-- @tparam[opt] table opts `key` (partition key, default `event.partitionkey`
--   or `event.subject`), `pubsub`, `attempts`, `traceparent`
-- @treturn boolean true when the sidecar accepted it
-- @return or nil, message, "transient"|"permanent"
function M.publish(topic, event, opts)
  opts = opts or {}
  if not M.valid_name(topic) then error("dapr.publish: invalid topic " .. tostring(topic), 2) end
  if type(event) ~= "table" or event.id == nil then
    error("dapr.publish: event must be a CloudEvent table with an id", 2)
  end
  local c = M.config
  local ce = {}
  for k, v in pairs(event) do ce[k] = v end
  ce.specversion = ce.specversion or "1.0"
  ce.source = ce.source or "todo-host"
  ce.type = ce.type or "com.todo.event"
  if ce.data ~= nil and ce.datacontenttype == nil then ce.datacontenttype = "application/json" end
  local body = json.encode(ce)
  local headers = { ["content-type"] = "application/cloudevents+json" }
  if c.api_token then headers["dapr-api-token"] = c.api_token end
  if opts.traceparent then headers["traceparent"] = opts.traceparent end
  local url = M.publish_url(topic, key_of(event, opts), opts.pubsub)
  local attempts = opts.attempts or c.attempts
  local delay = c.backoff
  local err
  for attempt = 1, attempts do
    local res, msg, code = http.request {
      method = "POST", url = url, headers = headers, body = body, timeout = c.timeout,
    }
    local kind
    if res then
      kind = M.classify(res.status)
      if kind == "ok" then return true end
      err = "dapr publish " .. topic .. ": " .. describe(res)
    else
      kind = "transient"
      err = string.format("dapr publish %s: %s (%s)", topic, tostring(msg), tostring(code))
    end
    if kind == "permanent" then
      log.error("dapr publish refused", { topic = topic, event_id = tostring(event.id), error = err })
      return nil, err, "permanent"
    end
    if attempt < attempts then
      log.warn("dapr publish failed, retrying", { topic = topic, attempt = attempt, error = err })
      timer.sleep(delay)
      delay = math.min(delay * 2, c.max_backoff)
    end
  end
  return nil, err, "transient"
end

--- The routes daprd calls on the app (driver interface, called by
-- `bus.define` at load time): the subscription list and one delivery route
-- per (pubsub, topic). See `bus.dapr_app.routes`.
-- @tparam table manifest the bundle's manifest (unused: ctx has what is needed)
-- @tparam table ctx `bundle`, `subscriptions` (normalized by `bus.define`)
-- @treturn table a list of `{method=, path=, handler=}`
function M.routes(manifest, ctx)
  return require("bus.dapr_app").routes(ctx or manifest)
end

--- Start the bundle's background work (driver interface, called from the
-- bundle's on_start): the outbox relay. Deliveries need nothing started: daprd
-- calls the routes.
-- @tparam table ctx as for `routes`
function M.start(ctx)
  local _ = ctx
  require("bus.dapr_relay").start()
end

return M

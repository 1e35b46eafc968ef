--- The app side of the Dapr contract (daprd -> app): the subscription list
-- answered on `GET /dapr/subscribe` and the delivery routes, built from a
-- bundle's manifest `subscriptions`.
--
-- Owns: turning manifest subscriptions into Dapr subscriptions and routes, the
-- `dapr-api-token` check (`APP_API_TOKEN`; the host answers /healthz and
-- /readyz itself, so health paths never see it), decoding deliveries, and
-- mapping what the handlers did into SUCCESS / RETRY / DROP (contract section
-- 3). Idempotency and dead letters use `bus.consumer`, shared with the postgres
-- driver; daprd (its resiliency policy, the broker) does the redelivering.
--
-- A manifest entry: `{topic = "task-events", handler = fn, group = "recurring-task"}`
-- (group defaults to the bundle name), or `{topic =, handler =, broadcast = true}`
-- for a consumer that must see every event in every replica: it is subscribed
-- through the broadcast component (consumerID `{podName}`), and its group
-- carries the replica's name so replicas do not share idempotency records.
-- @module bus.dapr_app
local json = require "json"
local crypto = require "crypto"
local log = require "log"
local dapr = require "bus.drivers.dapr"

local M = {}

--- Delivery routes live under this prefix: `/dapr/events/<pubsub>/<topic>`.
M.prefix = "/dapr/events"

local function replica_name()
  local v = os.getenv("POD_NAME")
  if v == nil or v == "" then v = os.getenv("HOSTNAME") end
  if v == nil or v == "" then v = "local" end
  return v
end

--- The Dapr view of a bundle's subscriptions. `ctx` is what `bus.define`
-- passes to drivers: `bundle` (the name) and `subscriptions`, already checked
-- and defaulted there (`topic`, `group`, `handler`, `broadcast`,
-- `max_attempts`). Raises (the bundle then fails to load) on a name Dapr
-- cannot carry in a URL.
-- @tparam table ctx
-- @treturn table copies of the subscriptions with `pubsub` set (and, for
--   broadcast, a per-replica `group`)
function M.normalize(ctx)
  local out = {}
  local c = dapr.config
  for i, s in ipairs(ctx.subscriptions or {}) do
    local where = string.format("%s: subscriptions[%d]", tostring(ctx.bundle), i)
    if not dapr.valid_name(s.topic) then error(where .. ": topic must match [%w._-]+", 3) end
    local group = s.group or ctx.bundle
    if not dapr.valid_name(group) then error(where .. ": group must match [%w._-]+", 3) end
    if s.metadata ~= nil and type(s.metadata) ~= "table" then error(where .. ": metadata must be a table", 3) end
    local e = {}
    for k, v in pairs(s) do e[k] = v end
    e.broadcast = s.broadcast == true
    e.pubsub = e.broadcast and c.pubsub_broadcast or c.pubsub
    -- bus.consumer records (group, event id): a broadcast consumer is one group
    -- per replica, so its records must not be shared with the other replicas.
    e.group = e.broadcast and (group .. "@" .. replica_name()) or group
    e.max_attempts = s.max_attempts -- nil: BUS_MAX_ATTEMPTS or 5 (bus.consumer)
    out[#out + 1] = e
  end
  return out
end

--- The JSON array for `GET /dapr/subscribe`: one Dapr subscription per
-- (pubsub, topic); several handlers of one topic share its route. Metadata
-- values are strings (daprd's decoder rejects the whole list otherwise).
-- @tparam table entries from `normalize`
-- @treturn table the list (a JSON array)
function M.subscriptions(entries)
  local list, seen = json.array({}), {}
  for _, e in ipairs(entries) do
    local k = e.pubsub .. "\0" .. e.topic
    local sub = seen[k]
    if not sub then
      sub = { pubsubname = e.pubsub, topic = e.topic, route = M.route_path(e.pubsub, e.topic) }
      seen[k] = sub
      list[#list + 1] = sub
    end
    for mk, mv in pairs(e.metadata or {}) do
      sub.metadata = sub.metadata or {}
      sub.metadata[tostring(mk)] = tostring(mv)
    end
  end
  return list
end

--- The delivery path of a (pubsub, topic).
-- @tparam string pubsub
-- @tparam string topic
-- @treturn string
function M.route_path(pubsub, topic)
  return M.prefix .. "/" .. pubsub .. "/" .. topic
end

--- Whether a request carries the token daprd sends (`dapr-api-token`) when
-- `APP_API_TOKEN` is set; always true when it is not set.
-- @tparam table req
-- @tparam[opt] string expected the token (default: `APP_API_TOKEN`)
-- @treturn boolean
function M.token_ok(req, expected)
  if expected == nil then expected = os.getenv("APP_API_TOKEN") end
  if expected == nil or expected == "" then return true end
  local got = req.headers and req.headers["dapr-api-token"]
  if type(got) ~= "string" then return false end
  return crypto.constant_time_eq(got, expected)
end

local function unauthorized()
  -- Any status but 2xx and 404 makes daprd retry, which is what a token
  -- mismatch (a deployment error) deserves: the event is not lost.
  return 401, { error = { code = "unauthorized", message = "missing or wrong dapr-api-token" } }
end

local function b64decode(s)
  s = s:gsub("%s", ""):gsub("=+$", ""):gsub("%+", "-"):gsub("/", "_")
  return crypto.base64url_decode(s)
end

local function is_json_type(ct)
  if type(ct) ~= "string" then return true end -- Dapr's default is JSON
  ct = ct:lower()
  return ct:find("json", 1, true) ~= nil
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- Decode a delivery body into a CloudEvent with `data` decoded: JSON `data`
-- as is, `data_base64` decoded (then parsed when `datacontenttype` is JSON).
-- @tparam string body
-- @treturn table the event, or nil, reason (the delivery is then dropped)
function M.decode_event(body)
  if type(body) ~= "string" or body == "" then return nil, "empty body" end
  local ev, err = json.decode(body)
  if type(ev) ~= "table" or json.is_array(ev) then return nil, err or "the body is not a JSON object" end
  if type(ev.id) ~= "string" or not ev.id:match(UUID) then
    -- bus_inbox keys on a uuid: an event without one can never be recorded
    return nil, "the event id is not a UUID"
  end
  if type(ev.type) ~= "string" or ev.type == "" then return nil, "the event has no type" end
  ev.id = ev.id:lower()
  if (ev.data == nil or ev.data == json.null) and type(ev.data_base64) == "string" then
    local raw = b64decode(ev.data_base64)
    if raw == nil then return nil, "data_base64 is not base64" end
    if is_json_type(ev.datacontenttype) then
      local data = json.decode(raw)
      if data == nil then return nil, "data_base64 does not hold JSON" end
      ev.data = data
    else
      ev.data = raw
    end
    ev.data_base64 = nil
  elseif type(ev.data) == "string" and is_json_type(ev.datacontenttype)
      and ev.datacontenttype ~= nil then
    -- a publisher that sent JSON text as a string: parse it when it parses
    ev.data = json.decode(ev.data) or ev.data
  end
  return ev
end

--- Run one subscription's handler on one event with the consumer runner
-- shared with the postgres driver (`bus.consumer.handle`: the handler's
-- effects and its (group, event id) record commit in one transaction; failures
-- are counted in bus_attempts and the event is dead-lettered after
-- `max_attempts`), and say what daprd should do.
-- @tparam table sub a normalized subscription (`group`, `topic`, `handler`, `max_attempts`)
-- @tparam table event a decoded CloudEvent
-- @treturn string "done", "duplicate", "retry" or "drop" (dead-lettered)
-- @treturn ?string the failure, for "retry" and "drop"
function M.run(sub, event)
  return require("bus.consumer").handle(sub.group, sub.handler, event,
    { topic = sub.topic, max_attempts = sub.max_attempts, idempotent = sub.idempotent })
end

--- Replace the runner (specs, or a bundle with its own).
-- @tparam function fn `fn(sub, event) -> outcome, detail`
function M.set_runner(fn)
  M.run = fn
end

local STATUS = { done = "SUCCESS", duplicate = "SUCCESS", retry = "RETRY", drop = "DROP" }

--- Run every handler of one (pubsub, topic) on an event and combine the
-- outcomes: RETRY when any handler must retry (the others recorded the event,
-- so the redelivery is a no-op for them), DROP when every handler dropped it,
-- else SUCCESS.
-- @tparam table subs the subscriptions of that (pubsub, topic)
-- @tparam table event a decoded CloudEvent
-- @treturn string "SUCCESS", "RETRY" or "DROP"
function M.dispatch(subs, event)
  local any_retry, all_drop = false, true
  for _, sub in ipairs(subs) do
    local ok, outcome, detail = pcall(M.run, sub, event)
    if not ok then
      detail, outcome = outcome, "retry"
    end
    local status = STATUS[outcome]
    if status == nil then
      detail, status = "unknown outcome " .. tostring(outcome), "RETRY"
    end
    if status == "RETRY" then
      any_retry = true
      log.warn("dapr delivery: retry", { group = sub.group, topic = sub.topic, event_id = event.id,
        error = detail and tostring(detail) })
    end
    if status ~= "DROP" then all_drop = false end
  end
  if any_retry then return "RETRY" end
  if all_drop and #subs > 0 then return "DROP" end
  return "SUCCESS"
end

--- The routes daprd calls: `GET /dapr/subscribe` (always, so a bundle without
-- subscriptions answers `[]`) and `POST /dapr/events/<pubsub>/<topic>` for
-- each subscribed topic. `bus.define` adds them to the manifest's `routes`.
-- One bundle per process with BUS=dapr (as in the cluster): a second bundle
-- declaring `GET /dapr/subscribe` makes the host refuse to load.
-- @tparam table ctx from `bus.define` (`bundle`, `subscriptions`)
-- @treturn table list of `{method=, path=, handler=}`
function M.routes(ctx)
  local entries = M.normalize(ctx)
  local body = M.subscriptions(entries)
  local routes = {
    {
      method = "GET", path = "/dapr/subscribe",
      handler = function(req)
        if not M.token_ok(req) then return unauthorized() end
        return 200, body
      end,
    },
  }
  local by_route = {}
  for _, e in ipairs(entries) do
    local path = M.route_path(e.pubsub, e.topic)
    if not by_route[path] then
      by_route[path] = {}
      local group = by_route[path]
      routes[#routes + 1] = {
        method = "POST", path = path,
        handler = function(req)
          if not M.token_ok(req) then return unauthorized() end
          local event, why = M.decode_event(req.body)
          if not event then
            log.warn("dapr delivery dropped: malformed event", { route = path, reason = why })
            return 200, { status = "DROP" }
          end
          return 200, { status = M.dispatch(group, event) }
        end,
      }
    end
    table.insert(by_route[path], e)
  end
  return routes
end

return M

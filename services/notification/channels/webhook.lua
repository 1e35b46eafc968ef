--- The webhook channel: one POST per notification to the user's URL, signed.
-- Headers: `X-Todo-Timestamp` (Unix seconds), `X-Todo-Signature: v1=<hex HMAC-SHA256 of
-- "<timestamp>.<body>" under the user's secret>`, `X-Todo-Delivery` (the delivery id, the
-- same on every attempt: receivers deduplicate by it). Sent through the host's `http`
-- primitive with a timeout (NOTIFY_WEBHOOK_TIMEOUT_SECONDS, default 5), no redirects,
-- and `deny_private`: the address actually connected to, whatever the URL's host name
-- resolved to, may not be private, loopback, link-local or reserved (checked by the
-- client at connect time, so DNS rebinding cannot slip past a check made earlier);
-- NOTIFY_WEBHOOK_DEV=1 lets loopback through, NOTIFY_WEBHOOK_ALLOW_PRIVATE=1 everything
-- (development and tests only). NOTIFY_WEBHOOK_RESOLVE ("host:port:address", comma
-- separated) pins names to addresses: for tests only.
-- A 2xx is delivered; 408, 425, 429 and 5xx, timeouts and connection failures are
-- retried; any other 4xx is the receiver saying no, and a refused address is the URL's
-- fault: neither is retried.
-- @module notification.channels.webhook

local http = require "http"
local json = require "json"
local crypto = require "crypto"
local clock = require "notification.clock"
local webhook_url = require "notification.webhook_url"

local M = { name = "webhook" }

M.TIMEOUT = tonumber(os.getenv("NOTIFY_WEBHOOK_TIMEOUT_SECONDS") or "") or 5

local RETRY_4XX = { [408] = true, [425] = true, [429] = true }

--- The signature header value for a body sent at `timestamp`.
-- @tparam string secret
-- @tparam string timestamp Unix seconds as text
-- @tparam string body
-- @treturn string `v1=<hex>`
function M.signature(secret, timestamp, body)
  return "v1=" .. crypto.hex(crypto.hmac_sha256(secret, timestamp .. "." .. body))
end

--- A new signing secret (`whsec_` + 32 random bytes, base64url).
function M.new_secret()
  return "whsec_" .. crypto.base64url_encode(assert(crypto.random_bytes(32)))
end

--- One attempt (see notification.channels).
-- @tparam table d the delivery (`id`, `target`, `secret`, `attempt`)
-- @tparam table n the notification
function M.send(d, n)
  local body = json.encode {
    type = "reminder.due",
    delivery_id = d.id,
    attempt = d.attempt,
    notification = n,
  }
  local ts = tostring(math.floor(clock.now()))
  local policy = webhook_url.connect_policy()
  local res, err, code = http.request {
    url = d.target, method = "POST", body = body, timeout = M.TIMEOUT, max_body = 65536,
    deny_private = policy.deny_private, allow_loopback = policy.allow_loopback, resolve = policy.resolve,
    headers = {
      ["content-type"] = "application/json",
      ["user-agent"] = "todo-chatbot-notifications/1",
      ["x-todo-timestamp"] = ts,
      ["x-todo-signature"] = M.signature(d.secret, ts, body),
      ["x-todo-delivery"] = d.id,
    },
  }
  if code == "refused" then
    return { retry = false, error = "refused: " .. tostring(err),
      reason = "not sent: the webhook's host resolves to a private, loopback or reserved address ("
        .. (tostring(err):match("^refused to connect to (.-): ") or "?") .. "), which is refused here" }
  end
  if not res then return { retry = true, error = (code or "io") .. ": " .. tostring(err) } end
  local s = res.status
  if s >= 200 and s < 300 then return { ok = true, status = s } end
  if s >= 500 or RETRY_4XX[s] then return { retry = true, status = s, error = "HTTP " .. s } end
  return { retry = false, status = s, error = "HTTP " .. s }
end

return M

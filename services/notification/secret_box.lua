--- Webhook signing secrets at rest: sealed with AES-256-GCM (crypto.aead_seal) under a
-- key read through lua/secrets (`webhook-signing-key`, env WEBHOOK_SIGNING_KEY; at least
-- 32 characters). The AES key is HMAC-SHA256(that value, a fixed label); its id, stored
-- beside each sealed secret, is the first 12 hex digits of a hash of the AES key, so a
-- row names the key that sealed it without revealing it. The user id is the associated
-- data: a sealed secret copied onto another user's row does not open.
-- Rotation: set the new value as WEBHOOK_SIGNING_KEY and the old one as
-- WEBHOOK_SIGNING_KEY_PREVIOUS (`webhook-signing-key-previous`); rows sealed under the
-- previous key still open, and `reseal_batch` (run by notification.retention's loop)
-- seals them, and any row still in plain text from before this module, under the
-- current key. Without a configured key and only when AUTH_DEV_SECRET is set (a
-- development setup, whose tokens are forgeable anyway) a key is derived from it, with a
-- warning. Keys are read once per process (they change with a rollout). Never logs a
-- key or a secret.
-- @module notification.secret_box

local pg = require "pg"
local crypto = require "crypto"
local log = require "log"
local secrets = require "secrets"

local M = {}

M.MIN_KEY = 32
local LABEL = "todo-chatbot webhook signing secrets v1"

local loaded -- {current = {id, key}, previous = {id, key} | nil}

local function derive(material)
  local key = crypto.hmac_sha256(material, LABEL)
  return { key = key, id = crypto.hex(crypto.sha256("key id\n" .. key)):sub(1, 12) }
end

--- The keys: `{current = {id =, key =}, previous = {...} | nil}`, or nil and why (never
-- holding a key).
function M.keys()
  if loaded then return loaded end
  local material, err = secrets.get("webhook-signing-key", "WEBHOOK_SIGNING_KEY")
  local current
  if material then
    if #material < M.MIN_KEY then
      return nil, "the webhook signing key (WEBHOOK_SIGNING_KEY) must be at least " .. M.MIN_KEY .. " characters"
    end
    current = derive(material)
  elseif (os.getenv("AUTH_DEV_SECRET") or "") ~= "" then
    current = derive("development key from AUTH_DEV_SECRET\n" .. os.getenv("AUTH_DEV_SECRET"))
    log.warn("notification: WEBHOOK_SIGNING_KEY is not set; webhook secrets are sealed under a key derived "
      .. "from AUTH_DEV_SECRET (development only)", { key_id = current.id })
  else
    return nil, "the webhook signing key is not configured (" .. tostring(err) .. ")"
  end
  local old = secrets.get("webhook-signing-key-previous", "WEBHOOK_SIGNING_KEY_PREVIOUS")
  loaded = { current = current, previous = old and #old >= M.MIN_KEY and derive(old) or nil }
  if loaded.previous and loaded.previous.id == current.id then loaded.previous = nil end
  return loaded
end

local function aad(user) return "webhook\n" .. user end

--- Seal `secret` for `user`: base64url text and the key id, or nil and why.
function M.seal(user, secret)
  local k, err = M.keys()
  if not k then return nil, err end
  return crypto.base64url_encode(crypto.aead_seal(k.current.key, secret, aad(user))), k.current.id
end

--- Open a sealed secret of `user`: the secret, or nil and a message for the delivery log.
function M.open(user, sealed, key_id)
  local k, err = M.keys()
  if not k then return nil, err end
  local key
  if key_id == k.current.id then
    key = k.current
  elseif k.previous and key_id == k.previous.id then
    key = k.previous
  else
    return nil, "the webhook signing secret was sealed under key " .. tostring(key_id) .. ", which is neither "
      .. "WEBHOOK_SIGNING_KEY (key " .. k.current.id .. ") nor WEBHOOK_SIGNING_KEY_PREVIOUS"
      .. (k.previous and (" (key " .. k.previous.id .. ")") or " (not set)") .. "; not sent"
  end
  local raw = type(sealed) == "string" and crypto.base64url_decode(sealed)
  local secret = raw and crypto.aead_open(key.key, raw, aad(user))
  if not secret then
    return nil, "the webhook signing secret does not open under key " .. key.id
      .. " (altered, or sealed for another user); not sent"
  end
  return secret
end

--- The secret of a channel row (`secret` in plain text from before sealing, else
-- `secret_sealed` + `secret_key_id`), or nil and why.
function M.of_row(user, row)
  if type(row.secret) == "string" then return row.secret end
  return M.open(user, row.secret_sealed, row.secret_key_id)
end

--- Seal, under the current key, up to `limit` rows still in plain text or sealed under
-- the previous key (one short transaction; rows another worker holds are skipped).
-- @return the number of rows sealed, or nil and why
function M.reseal_batch(limit)
  local k, err = M.keys()
  if not k then return nil, err end
  local n = 0
  local ok, terr = pg.tx(function(tx)
    local rows, qerr = tx:query([[SELECT user_id, channel, secret, secret_sealed, secret_key_id
      FROM notification_channels WHERE secret IS NOT NULL OR secret_key_id = $1
      LIMIT $2 FOR UPDATE SKIP LOCKED]], k.previous and k.previous.id or "", limit)
    if not rows then return nil, qerr end
    for _, r in ipairs(rows) do
      local secret = M.of_row(r.user_id, r)
      -- a row that does not open stays as it is (its deliveries say why)
      if secret then
        local sealed = M.seal(r.user_id, secret)
        local u, uerr = tx:query([[UPDATE notification_channels SET secret = NULL, secret_sealed = $3,
          secret_key_id = $4 WHERE user_id = $1 AND channel = $2]], r.user_id, r.channel, sealed, k.current.id)
        if not u then return nil, uerr end
        n = n + 1
      end
    end
    return true
  end)
  if not ok then return nil, terr end
  return n
end

--- Forget the keys read (specs).
function M.reset() loaded = nil end

return M

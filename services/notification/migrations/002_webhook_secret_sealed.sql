-- Webhook signing secrets sealed at rest (notification.secret_box): AES-256-GCM text and
-- the id of the key that sealed it. `secret` (plain text) is kept only for rows written
-- before this migration: the bundle seals those under the current key at start (a SQL
-- migration cannot, the key is not in the database) and clears `secret`.
ALTER TABLE notification_channels
  ALTER COLUMN secret DROP NOT NULL,
  ADD COLUMN secret_sealed text,
  ADD COLUMN secret_key_id text,
  ADD CONSTRAINT notification_channels_secret_kept
    CHECK (secret IS NOT NULL OR (secret_sealed IS NOT NULL AND secret_key_id IS NOT NULL));

-- The PostgreSQL backend of lua/state (one machine, BUS=postgres): short-lived entries
-- that every process shares (per-user rate-limit counters). With BUS=dapr the same Lua
-- API goes to Dapr's state store instead and this table stays empty. IF NOT EXISTS so
-- another bundle that needs the state store without the api bundle may carry the same file.
-- UNLOGGED: nothing here must survive a crash (PostgreSQL empties it after one), and
-- skipping the WAL makes the per-request counter of web.ratelimit about 3.5 times cheaper.
CREATE UNLOGGED TABLE IF NOT EXISTS state_entries (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  etag bigint NOT NULL DEFAULT 1,
  expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS state_entries_expiry ON state_entries (expires_at) WHERE expires_at IS NOT NULL;

-- 001_ws_log: the per-user event log of the WebSocket bundle (resume, hello's newest id).
-- Needs services/api's migrations first (bus_outbox, 002_events.sql): `todo-host migrate`
-- takes bundles in the order given, and `make run` gives them in name order.
--
-- Every event published on `task-updates` or `reminders` is copied into ws_events by a
-- trigger on bus_outbox, inside the publishing transaction: the log has an event exactly
-- when its change committed, whether or not a websocket process is running (a broadcast
-- subscription starts at the end of the log, so it could not fill a durable log). The
-- copy numbers the events of each user 1, 2, 3 ... (ws_log_users.last_id, bumped with an
-- UPDATE: the user's row lock is held until commit, so numbers are gap-free and follow
-- commit order; rows are locked in user order after the bus's partition rows, the same
-- order in every publisher, so publishers never deadlock).
-- Events older than WS_RESUME_WINDOW_SECONDS are pruned by the bundle; pruned_through
-- remembers the newest pruned id of each user (a resume from before it answers resync).

CREATE TABLE ws_log_users (
    user_id        text   PRIMARY KEY,
    last_id        bigint NOT NULL DEFAULT 0,
    pruned_through bigint NOT NULL DEFAULT 0
);

CREATE TABLE ws_events (
    user_id  text        NOT NULL,
    event_id bigint      NOT NULL,
    ce_id    uuid        NOT NULL,           -- the CloudEvent id (bus_outbox.id)
    type     text        NOT NULL,           -- the CloudEvent type: task.created, reminder.due, ...
    data     jsonb       NOT NULL,           -- the CloudEvent data
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX ws_events_ce_idx ON ws_events (ce_id);
CREATE INDEX ws_events_at_idx ON ws_events (at);

CREATE FUNCTION ws_log_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH n AS (
    SELECT key, id, event,
           row_number() OVER (PARTITION BY key ORDER BY topic, part, seq) AS k,
           count(*) OVER (PARTITION BY key) AS cnt
      FROM ws_new_rows
     WHERE topic IN ('task-updates', 'reminders')),
  c AS (SELECT DISTINCT key, cnt FROM n),
  u AS (
    INSERT INTO ws_log_users AS w (user_id, last_id)
    SELECT key, cnt FROM c ORDER BY key
    ON CONFLICT (user_id) DO UPDATE SET last_id = w.last_id + excluded.last_id
    RETURNING user_id, last_id)
  INSERT INTO ws_events (user_id, event_id, ce_id, type, data)
  SELECT n.key, u.last_id - n.cnt + n.k, n.id, n.event->>'type', n.event->'data'
    FROM n JOIN u ON u.user_id = n.key;
  RETURN NULL;
END
$$;

CREATE TRIGGER ws_log_capture AFTER INSERT ON bus_outbox
    REFERENCING NEW TABLE AS ws_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ws_log_capture();

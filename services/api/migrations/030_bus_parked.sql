-- 030_bus_parked: events parked aside by the postgres bus driver (issue 19). Partitions
-- hash many keys (users) together; a failing event used to block its partition through
-- its retries (seconds), delaying every other key there. Now the failing event, and the
-- later events of the same key (to keep that key's order), are copied here and the
-- partition's cursor goes on; the driver retries each key's parked events in order with
-- the usual backoff and dead-letters after max_attempts (lua/bus/drivers/postgres.lua).
--
--   next_attempt_at  when the key's first parked event is tried again (later ones of the
--                    key wait behind it whatever theirs says)
--   bus_cursors.parked  how many events of the group's partition are parked (0 in the
--                    common case: the fast path then never looks at this table)

CREATE TABLE bus_parked (
    grp             text        NOT NULL,
    topic           text        NOT NULL,
    part            integer     NOT NULL,
    seq             bigint      NOT NULL,
    key             text        NOT NULL,
    event           jsonb       NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, topic, part, seq)
);
CREATE INDEX bus_parked_key_idx ON bus_parked (grp, topic, part, key, seq);

ALTER TABLE bus_cursors ADD COLUMN parked integer NOT NULL DEFAULT 0;

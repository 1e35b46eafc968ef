-- 002_events: the event bus of one-machine mode (BUS=postgres) and the task history.
-- Owned by lua/bus (bus_*) and services/api/tasks/history.lua (task_history).
--
-- The log is partitioned: a topic has a fixed number of partitions and an event goes to
-- partition hash(key) % n. Publishing bumps bus_partitions.last_seq with an UPDATE, so a
-- partition's row lock is held by the publishing transaction until it commits: within a
-- partition, sequence numbers are gap-free and in commit order (a rolled-back publish
-- rolls back its number too). Each subscription group keeps one cursor per partition;
-- a consumer claims a cursor row (FOR UPDATE SKIP LOCKED) while it processes that
-- partition, so two replicas never work on one partition (one key) at once.
-- With BUS=dapr the relay to the sidecar is itself a group ("relay") over this log.

CREATE TABLE bus_partitions (
    topic    text    NOT NULL,
    part     integer NOT NULL,
    last_seq bigint  NOT NULL,
    PRIMARY KEY (topic, part)
);

CREATE TABLE bus_outbox (
    topic      text        NOT NULL,
    part       integer     NOT NULL,
    seq        bigint      NOT NULL,
    id         uuid        NOT NULL,
    key        text        NOT NULL,
    event      jsonb       NOT NULL,           -- the CloudEvent, as published
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (topic, part, seq)
);
CREATE INDEX bus_outbox_created_idx ON bus_outbox (created_at);

-- One row per (group, topic, partition). seq: the last event processed. A failing event
-- blocks its partition until next_attempt_at; attempts counts its failures.
CREATE TABLE bus_cursors (
    grp             text        NOT NULL,
    topic           text        NOT NULL,
    part            integer     NOT NULL,
    seq             bigint      NOT NULL DEFAULT 0,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    broadcast       boolean     NOT NULL DEFAULT false,
    seen_at         timestamptz NOT NULL DEFAULT now(),  -- heartbeat (stale broadcast groups go)
    PRIMARY KEY (grp, topic, part)
);

-- Idempotency: (consumer group, event id) recorded in the handler's own transaction.
CREATE TABLE bus_inbox (
    grp          text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, event_id)
);
CREATE INDEX bus_inbox_processed_idx ON bus_inbox (processed_at);

-- Failures so far of events delivered by an external broker (BUS=dapr), which has no
-- cursor to count them on.
CREATE TABLE bus_attempts (
    grp        text        NOT NULL,
    event_id   uuid        NOT NULL,
    attempts   integer     NOT NULL,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, event_id)
);

-- Events a handler kept failing on. retry_requested_at: `todo-host events retry ID`.
CREATE TABLE bus_dead_letters (
    id                 bigserial   PRIMARY KEY,
    grp                text        NOT NULL,
    topic              text        NOT NULL,
    event_id           uuid        NOT NULL,
    event              jsonb       NOT NULL,
    error              text        NOT NULL,
    attempts           integer     NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    retry_requested_at timestamptz,
    replayed_at        timestamptz
);
CREATE INDEX bus_dead_letters_retry_idx ON bus_dead_letters (grp, retry_requested_at)
    WHERE retry_requested_at IS NOT NULL AND replayed_at IS NULL;

-- Task history (the audit service), filled by the "history" consumer of task-events.
-- task: the task after the change (as it was, for deletions); before: the task before
-- the change when known (from the previous entry of the same task).
CREATE TABLE task_history (
    id         bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL UNIQUE,
    user_id    text        NOT NULL,
    task_id    uuid        NOT NULL,
    kind       text        NOT NULL,
    version    integer     NOT NULL,
    changed    text[]      NOT NULL DEFAULT '{}',
    task       jsonb       NOT NULL,
    before     jsonb,
    at         timestamptz NOT NULL
);
CREATE INDEX task_history_task_idx ON task_history (user_id, task_id, id);
CREATE INDEX task_history_user_idx ON task_history (user_id, id);

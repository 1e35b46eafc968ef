-- The notification bundle (issue 15): the reminder schedule kept from task-events, the
-- notifications the scheduler writes, and webhook settings and deliveries.
-- No foreign key to tasks: the bundles migrate independently (the scheduler reads the
-- task again when a reminder fires).

-- One row per reminder of a task (and one per snooze). `rkey` names the reminder within
-- its task: 'at:<instant>', 'before:<duration>' or 'snooze'. state: scheduled -> fired;
-- 'skipped' when its time had already passed when it was set (never fires).
CREATE TABLE reminder_schedule (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    text NOT NULL,
  task_id    uuid NOT NULL,
  rkey       text NOT NULL,
  remind_at  timestamptz NOT NULL,
  state      text NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'fired', 'skipped')),
  fired_at   timestamptz,
  UNIQUE (task_id, rkey)
);
-- The scheduler's one question: the earliest reminder still to fire.
CREATE INDEX reminder_schedule_due ON reminder_schedule (remind_at) WHERE state = 'scheduled';

-- The last task version the schedule was computed from (events may be redelivered or,
-- with an external broker, arrive out of order: an older version never wins).
CREATE TABLE reminder_tasks (
  task_id  uuid PRIMARY KEY,
  user_id  text NOT NULL,
  version  integer NOT NULL,
  gone     boolean NOT NULL DEFAULT false
);

CREATE TABLE notifications (
  id           uuid PRIMARY KEY,
  user_id      text NOT NULL,
  kind         text NOT NULL DEFAULT 'reminder',
  task_id      uuid,
  title        text NOT NULL,
  due_at       timestamptz,
  remind_at    timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  late         boolean NOT NULL DEFAULT false,
  late_ms      bigint NOT NULL DEFAULT 0,
  read_at      timestamptz,
  schedule_id  uuid,
  -- a schedule row fires once per instant: the guard behind "never twice"
  UNIQUE (schedule_id, remind_at)
);
CREATE INDEX notifications_user_new ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;

-- Where a user's notifications go besides the API (one row per user and channel).
CREATE TABLE notification_channels (
  user_id     text NOT NULL,
  channel     text NOT NULL,
  target      text NOT NULL,
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, channel)
);

-- One delivery of one notification over one channel, retried until done or given up.
CREATE TABLE notification_deliveries (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  user_id         text NOT NULL,
  channel         text NOT NULL,
  target          text NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  reason          text,
  created_at      timestamptz NOT NULL
);
CREATE INDEX notification_deliveries_next ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_user ON notification_deliveries (user_id, created_at DESC, id DESC);

CREATE TABLE notification_delivery_attempts (
  delivery_id  uuid NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  started_at   timestamptz NOT NULL,
  duration_ms  integer NOT NULL,
  status       integer,
  error        text,
  PRIMARY KEY (delivery_id, attempt)
);

-- Retention of the reminder schedule (notification.retention): rows that will never fire
-- again — fired ones, by fired_at, and skipped ones (their time had passed when they
-- were set), by remind_at — are found by this index.
CREATE INDEX reminder_schedule_done ON reminder_schedule ((coalesce(fired_at, remind_at)))
  WHERE state <> 'scheduled';

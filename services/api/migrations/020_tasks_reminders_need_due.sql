-- Reminders (issue 15): a reminder {"before": <duration>} is an offset from the due time,
-- so a task that has one needs a due_at. The body is checked by tasks.schema; this covers
-- what a body alone cannot show (a PATCH clearing due_at, or adding an offset to a task
-- without one): tasks.repo maps the constraint, by name, to 422 reminder_needs_due.
-- NOT VALID: rows written before reminders were validated are not re-checked.
ALTER TABLE tasks ADD CONSTRAINT tasks_reminders_need_due
  CHECK (due_at IS NOT NULL OR reminders IS NULL OR NOT jsonb_path_exists(reminders, '$[*].before')) NOT VALID;

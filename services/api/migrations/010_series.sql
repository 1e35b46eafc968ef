-- 010_series: recurring tasks (issue 5). A task whose `recurrence` holds a rule is one
-- occurrence of a series; completing it makes the recurring-task bundle create the next.
-- Owned by lua/tasks/series.lua (the spawn) and services/api/recurrence/ (validation,
-- series deletion).
--
--   series_id         the series: the id of its first occurrence (set by the trigger below
--                     when a task first gets a recurrence); NULL for a one-off task
--   occurrence_index  1, 2, 3 ... within the current rule: COUNT=n ends the series after
--                     the n-th; changing the rule starts counting again at 1 (the rule
--                     applies "from this occurrence on", like RFC 5545's DTSTART)
--   spawned_from      the occurrence whose completion (or skipping) created this one
--
-- "Exactly one next occurrence per occurrence" is the primary key of task_series_spawns:
-- whoever creates the next occurrence of X first inserts (X) there in the same
-- transaction; a second attempt (a replayed event, another replica, a reopen and a second
-- completion, a crash and a retry) conflicts and creates nothing. The ledger is separate
-- from `tasks` so that the guarantee survives deleting either occurrence; a row with
-- task_id NULL records that the series ended (COUNT, UNTIL) or was stopped there.
-- spawned_from has no foreign key for the same reason (the source may be deleted).

ALTER TABLE tasks
    ADD COLUMN series_id        uuid,
    ADD COLUMN occurrence_index integer NOT NULL DEFAULT 1 CHECK (occurrence_index >= 1),
    ADD COLUMN spawned_from     uuid UNIQUE;

-- A recurring task needs a due time (the first occurrence of its rule). NOT VALID: rows
-- stored before this migration (any JSON was accepted then) are not checked.
ALTER TABLE tasks ADD CONSTRAINT tasks_recurrence_needs_due
    CHECK (recurrence IS NULL OR jsonb_typeof(recurrence) = 'null' OR due_at IS NOT NULL) NOT VALID;

CREATE INDEX tasks_user_series_idx ON tasks (user_id, series_id) WHERE series_id IS NOT NULL;

CREATE TABLE task_series_spawns (
    source_id  uuid        PRIMARY KEY,     -- the occurrence completed (or skipped)
    user_id    text        NOT NULL,
    series_id  uuid        NOT NULL,
    task_id    uuid,                        -- the occurrence created; NULL: none (ended)
    reason     text        NOT NULL,        -- completed, skipped, ended, stopped
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()  -- when the spawn ran
);
CREATE INDEX task_series_spawns_series_idx ON task_series_spawns (user_id, series_id);

-- Series bookkeeping that must hold whatever statement writes the row (create, PATCH,
-- bulk update): a task that gets a recurrence starts a series of its own unless it
-- already belongs to one; a change of the rule restarts the occurrence count.
CREATE FUNCTION tasks_series_bookkeeping() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.recurrence IS NOT NULL AND jsonb_typeof(NEW.recurrence) = 'object' THEN
        IF NEW.series_id IS NULL THEN
            NEW.series_id := NEW.id;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.recurrence IS NOT NULL
           AND jsonb_typeof(OLD.recurrence) = 'object'
           AND (NEW.recurrence->>'rule') IS DISTINCT FROM (OLD.recurrence->>'rule')
           AND NEW.occurrence_index = OLD.occurrence_index THEN
            NEW.occurrence_index := 1;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tasks_series_bookkeeping
    BEFORE INSERT OR UPDATE OF recurrence ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_series_bookkeeping();

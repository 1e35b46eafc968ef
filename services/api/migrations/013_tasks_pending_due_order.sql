-- 013_tasks_pending_due_order: the pending-by-due list in index order, and no trigger
-- call for tasks without a recurrence.
--
-- `status=pending&sort=due` orders by (due_at, id); the partial index of 001 held only
-- (user_id, due_at), so PostgreSQL read every pending task of the user with a due date
-- and sorted them (an incremental sort, 0.43 of 0.56 ms for a page). With id in the key
-- the index gives the order and the scan stops after one page. Queries on pending tasks
-- by due date alone (overdue, reminders) use it as they used the old one.
CREATE INDEX tasks_user_pending_due_id_idx ON tasks (user_id, due_at, id) WHERE NOT completed;
DROP INDEX tasks_user_pending_due_idx;

-- tasks_series_bookkeeping (010) does nothing unless NEW.recurrence is set; a WHEN
-- clause is evaluated without entering PL/pgSQL, which every plain task insert paid.
DROP TRIGGER tasks_series_bookkeeping ON tasks;
CREATE TRIGGER tasks_series_bookkeeping
    BEFORE INSERT OR UPDATE OF recurrence ON tasks
    FOR EACH ROW WHEN (NEW.recurrence IS NOT NULL)
    EXECUTE FUNCTION tasks_series_bookkeeping();

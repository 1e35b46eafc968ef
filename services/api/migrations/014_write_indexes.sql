-- 014_write_indexes: two index entries that every write paid for and no query reads.
--
-- tasks.spawned_from is set only on an occurrence spawned by a series (NULL on every
-- other task). The UNIQUE constraint of 010 kept an entry for every row version, NULLs
-- included: one more B-tree insertion per created task and per completed or reopened
-- task (a non-HOT update re-inserts into every index). A partial unique index gives the
-- same guarantee (NULLs never conflict) and holds only the spawned occurrences.
ALTER TABLE tasks DROP CONSTRAINT tasks_spawned_from_key;
CREATE UNIQUE INDEX tasks_spawned_from_key ON tasks (spawned_from) WHERE spawned_from IS NOT NULL;

-- bus_outbox.created_at is read only by the retention prune (lua/bus/drivers/postgres.lua,
-- `created_at < now() - retention`). Rows are appended in created_at order
-- (clock_timestamp() at insert), which is what a BRIN index summarizes well: a few
-- bytes per 128 pages instead of a B-tree entry for each of the two events per change.
DROP INDEX bus_outbox_created_idx;
CREATE INDEX bus_outbox_created_brin ON bus_outbox USING brin (created_at);

-- 015_gin_pending_list: keep the GIN indexes' pending lists short.
--
-- With fastupdate (the default) a GIN index collects new entries in an unsorted pending
-- list, which every search of the index reads in full and which is merged into the index
-- when vacuum runs or when it outgrows gin_pending_list_limit (4 MB by default), inside
-- whichever insert crosses it. Measured in make bench's setting (docs/benchmarks.md,
-- 2026-12-02): after ~40,000 creations the list route fell from ~7,000 to 1,116 req/s
-- (pending lists of 441 and 282 pages read by every tag query) and one creation run's
-- p99 went to 131 ms with a flush; with 256 kB the list stayed at 3,992-4,542 req/s on
-- the grown table (the same as with the lists emptied by hand) and creations did not
-- slow down (6,721-7,314 req/s against 6,462-7,363). fastupdate = off avoids the list
-- altogether but made each insert ~30 us dearer.
ALTER INDEX tasks_user_tags_idx SET (gin_pending_list_limit = 256);
ALTER INDEX tasks_user_search_idx SET (gin_pending_list_limit = 256);

-- 001_tasks: the tasks table of the Task API (issue 3).
-- Ids are UUIDs made by gen_random_uuid(). Every row belongs to one user (the token's
-- sub); every query filters on user_id first, so each index starts with it.
-- priority is stored as 0..3 (none, low, medium, high) so it sorts by meaning.

CREATE TABLE tasks (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      text        NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 255),
    title        text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description  text                 CHECK (char_length(description) <= 4000),
    completed    boolean     NOT NULL DEFAULT false,
    completed_at timestamptz,
    priority     smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
    tags         text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    due_at       timestamptz          CHECK (due_at >= '0001-01-01T00:00:00Z'
                                             AND due_at < '10000-01-01T00:00:00Z'),
    tz           text                 CHECK (char_length(tz) <= 64),
    recurrence   jsonb,
    reminders    jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer     NOT NULL DEFAULT 1,
    search       tsvector    GENERATED ALWAYS AS (
                     setweight(to_tsvector('english'::regconfig, title), 'A') ||
                     setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')
                 ) STORED,
    CHECK (completed = (completed_at IS NOT NULL))
);

-- Keyset pagination: one index per sort, (user_id, key, id).
CREATE INDEX tasks_user_created_idx  ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_updated_idx  ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_due_idx      ON tasks (user_id, due_at, id);
-- due descending keeps tasks without a due date last (NULLS LAST), which a backward
-- scan of the index above cannot give.
CREATE INDEX tasks_user_due_desc_idx ON tasks (user_id, due_at DESC NULLS LAST, id DESC);
CREATE INDEX tasks_user_priority_idx ON tasks (user_id, priority, id);
CREATE INDEX tasks_user_title_idx    ON tasks (user_id, title, id);
-- Pending tasks by due date: the "what is due / overdue" queries.
CREATE INDEX tasks_user_pending_due_idx ON tasks (user_id, due_at) WHERE NOT completed;
-- Tag filters (tags && $1, tags @> $1) and full-text search.
CREATE INDEX tasks_tags_idx   ON tasks USING gin (tags);
CREATE INDEX tasks_search_idx ON tasks USING gin (search);

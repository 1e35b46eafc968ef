--- The outbox: where `bus.publish` writes an event, inside the caller's transaction,
-- and where every driver reads from. Owns the SQL on bus_partitions / bus_outbox
-- (migration services/api/migrations/002_events.sql) and the key -> partition hash.
--
-- An event goes to partition `fnv1a32(key) % PARTITIONS` of its topic; the publishing
-- transaction bumps that partition's `last_seq` (its row lock is held until commit), so
-- within a partition sequence numbers are gap-free and follow commit order: per key,
-- events are delivered in the order their changes committed. The same statement sends
-- `NOTIFY todo_bus, '<topic>'`, which PostgreSQL delivers only if the transaction commits.
-- @module bus.outbox

local M = {}

--- Partitions per topic. Changing it remaps keys: drain the bus first.
M.PARTITIONS = 16
--- The LISTEN/NOTIFY channel.
M.CHANNEL = "todo_bus"

--- FNV-1a (32 bit) of a string.
-- @tparam string s
-- @treturn integer
function M.hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return h
end

--- The partition of a key.
-- @tparam string key
-- @treturn integer 0 .. PARTITIONS - 1
function M.partition(key)
  return M.hash(key) % M.PARTITIONS
end

local INSERT = [[
  WITH p AS (
    INSERT INTO bus_partitions AS bp (topic, part, last_seq) VALUES ($1, $2, 1)
    ON CONFLICT (topic, part) DO UPDATE SET last_seq = bp.last_seq + 1
    RETURNING last_seq),
  n AS (SELECT pg_notify($6, $1))
  INSERT INTO bus_outbox (topic, part, seq, id, key, event)
  SELECT $1, $2, p.last_seq, $3::uuid, $4, $5::jsonb FROM p, n]]

-- Several events in one statement: `$1` is a JSON array of {topic, part, id, key, event}.
-- Each (topic, partition) row of bus_partitions is bumped once, by the number of events it
-- gets (rows locked in (topic, part) order, so two publishers never deadlock); the events
-- of one partition take consecutive numbers in list order. One NOTIFY for the statement,
-- its payload the topics joined by ',' (listeners count notifications; fewer of them is
-- less work for every listening backend and for the commit).
local INSERT_MANY = [[
  WITH x AS (
    SELECT a.j->>'topic' AS topic, (a.j->>'part')::integer AS part, (a.j->>'id')::uuid AS id,
           a.j->>'key' AS key, a.j->'event' AS event, a.n
      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(j, n)),
  c AS (SELECT topic, part, count(*) AS cnt FROM x GROUP BY topic, part),
  p AS (
    INSERT INTO bus_partitions AS bp (topic, part, last_seq)
    SELECT topic, part, cnt FROM c ORDER BY topic, part
    ON CONFLICT (topic, part) DO UPDATE SET last_seq = bp.last_seq + excluded.last_seq
    RETURNING topic, part, last_seq),
  n AS (SELECT pg_notify($2, string_agg(DISTINCT topic, ',' ORDER BY topic)) AS sent FROM c)
  INSERT INTO bus_outbox (topic, part, seq, id, key, event)
  SELECT x.topic, x.part,
         p.last_seq - c.cnt + row_number() OVER (PARTITION BY x.topic, x.part ORDER BY x.n),
         x.id, x.key, x.event
    FROM x JOIN c USING (topic, part) JOIN p USING (topic, part), n
   ORDER BY x.n]]

--- Write several events into the outbox through `tx`, in one statement (same guarantees
-- as `M.write` for each: gap-free, commit-ordered numbers per partition, in list order).
-- @param tx a `pg.tx` transaction
-- @tparam table list array of `{topic =, key =, event =}` (key: the partition key)
-- @return true | nil, message, sqlstate
function M.write_many(tx, list)
  if #list == 0 then return true end
  local rows = {}
  for i, e in ipairs(list) do
    rows[i] = { topic = e.topic, part = M.partition(e.key), id = e.event.id, key = e.key, event = e.event }
  end
  local ok, err, state = tx:query(INSERT_MANY, rows, M.CHANNEL)
  if not ok then return nil, err, state end
  return true
end

--- Write one event into the outbox through `tx`.
-- @param tx a `pg.tx` transaction
-- @tparam string topic
-- @tparam string key the partition key
-- @tparam table event the CloudEvent
-- @return true | nil, message, sqlstate
function M.write(tx, topic, key, event)
  local rows, err, state = tx:query(INSERT, topic, M.partition(key), event.id, key, event, M.CHANNEL)
  if not rows then return nil, err, state end
  return true
end

return M

-- The transactional outbox on every write path (issue 13): a task change and its events
-- commit together or not at all. Two checks for each path:
--   * after a change, the task row and its events were written by ONE transaction:
--     the row's xmin equals the xmin of its outbox rows (both topics);
--   * a failure forced at COMMIT, after the publish (a deferred constraint trigger on
--     tasks that raises for a title the spec names), leaves neither the change nor an
--     event: the client gets a 500 and the outbox has nothing for that change.
-- Paths: create (alone and coalesced), PATCH, DELETE (both scopes, and the skip of an
-- open occurrence), complete and reopen (coalesced and with If-Match), bulk (every
-- action), undo (of an update, a creation and a deletion), the recurring spawn.
local h = require "spec.helpers"
local json = require "json"
local tz = require "tz"

local uid = h.uid

local DOOM = [[
  CREATE TABLE spec_doomed (title text NOT NULL, op text NOT NULL, PRIMARY KEY (title, op));
  CREATE FUNCTION spec_doom() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE t text;
  BEGIN
    IF TG_OP = 'DELETE' THEN t := OLD.title; ELSE t := NEW.title; END IF;
    IF EXISTS (SELECT 1 FROM spec_doomed WHERE title = t AND op = TG_OP) THEN
      RAISE EXCEPTION 'spec: failure forced at commit, after the publish';
    END IF;
    RETURN NULL;
  END $$;
  CREATE CONSTRAINT TRIGGER spec_doom AFTER INSERT OR UPDATE OR DELETE ON tasks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION spec_doom();]]

describe("outbox atomicity on every write path", function()
  local host, db, token, user

  lazy_setup(function()
    host = h.start({ bundles = { "services/api", "services/recurring-task" },
      env = { BUS_POLL_SECONDS = 0.5, BUS_BACKOFF_SECONDS = 0.2 } })
    db = host.database_url
    user = uid("atom")
    token = h.token(user)
    h.psql(DOOM, db)
  end)

  lazy_teardown(function() if host then host:stop() end end)

  local function sql(q) return h.psql(q, db) end
  local function q(s) return "'" .. s:gsub("'", "''") .. "'" end

  local function req(method, path, body, headers)
    return host:request(method, path, { token = token, body = body, headers = headers })
  end

  local function create(body)
    local status, task = req("POST", "/api/tasks", body)
    assert.are.equal(201, status, type(task) == "table" and task.error and task.error.message)
    return task
  end

  -- The task row and the events of its current version share one transaction id.
  local function same_tx(id, kind)
    local row = sql("SELECT xmin::text || ' ' || version FROM tasks WHERE id = " .. q(id))
    local xmin, version = row:match("^(%d+) (%d+)$")
    assert.is_truthy(xmin, "task " .. id .. " is missing")
    local events = sql("SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT xmin::text, ','), '') "
      .. "FROM bus_outbox WHERE event->>'subject' = " .. q(id) .. " AND event->>'type' = " .. q("task." .. kind)
      .. " AND (event->'data'->>'version')::integer = " .. version)
    assert.are.equal("2 " .. xmin, events, "task " .. id .. " (" .. kind .. ") and its events: one transaction")
  end

  local function events_of(id, kind)
    return tonumber(sql("SELECT count(*) FROM bus_outbox WHERE event->>'subject' = " .. q(id)
      .. " AND event->>'type' = " .. q("task." .. kind)))
  end

  -- Run `fn` with commits of `op` (INSERT / UPDATE / DELETE) on tasks titled `title` failing.
  local function doomed(title, op, fn)
    sql("INSERT INTO spec_doomed VALUES (" .. q(title) .. ", " .. q(op) .. ")")
    local ok, err = pcall(fn)
    sql("DELETE FROM spec_doomed WHERE title = " .. q(title))
    if not ok then error(err, 0) end
  end

  local function refused(status, body)
    assert.are.equal(500, status, json.encode(body))
  end

  describe("create", function()
    it("alone: the row and task.created in one transaction; a failed commit leaves neither", function()
      same_tx(create({ title = "made alone" }).id, "created")
      local title = uid("doomed create")
      doomed(title, "INSERT", function()
        refused(req("POST", "/api/tasks", { title = title }))
      end)
      assert.are.equal("0", sql("SELECT count(*) FROM tasks WHERE title = " .. q(title)))
      assert.are.equal("0", sql("SELECT count(*) FROM bus_outbox WHERE event->'data'->'task_data'->>'title' = "
        .. q(title)))
    end)

    it("coalesced: each creation with its own events; one failing item fails alone", function()
      local title = uid("doomed batch")
      local raws, titles = {}, {}
      for i = 1, 8 do
        titles[i] = i == 4 and title or uid("batched " .. i)
        local body = json.encode({ title = titles[i] })
        raws[i] = "POST /api/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " .. token
          .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
      end
      local results
      doomed(title, "INSERT", function() results = h.send_together(host.port, raws) end)
      for i, r in ipairs(results) do
        if i == 4 then
          assert.are.equal(500, r.status)
        else
          assert.are.equal(201, r.status, r.body)
          same_tx(json.decode(r.body).id, "created")
        end
      end
      assert.are.equal("0", sql("SELECT count(*) FROM bus_outbox WHERE event->'data'->'task_data'->>'title' = "
        .. q(title)))
    end)
  end)

  it("PATCH", function()
    local t = create({ title = uid("patch me") })
    assert.are.equal(200, (req("PATCH", "/api/tasks/" .. t.id, { priority = "high" })))
    same_tx(t.id, "updated")
    doomed(t.title, "UPDATE", function()
      refused(req("PATCH", "/api/tasks/" .. t.id, { priority = "low" }))
    end)
    assert.are.equal("high", select(2, req("GET", "/api/tasks/" .. t.id)).priority)
    assert.are.equal(1, events_of(t.id, "updated") / 2)
  end)

  for _, with_if_match in ipairs { false, true } do
    it("complete and reopen" .. (with_if_match and " with If-Match" or " (coalesced)"), function()
      local t = create({ title = uid("toggle me") })
      local function headers(v) return with_if_match and { ["If-Match"] = '"' .. v .. '"' } or nil end
      assert.are.equal(200, (req("POST", "/api/tasks/" .. t.id .. "/complete", nil, headers(1))))
      same_tx(t.id, "completed")
      assert.are.equal(200, (req("POST", "/api/tasks/" .. t.id .. "/reopen", nil, headers(2))))
      same_tx(t.id, "reopened")
      doomed(t.title, "UPDATE", function()
        refused(req("POST", "/api/tasks/" .. t.id .. "/complete", nil, headers(3)))
      end)
      assert.is_false(select(2, req("GET", "/api/tasks/" .. t.id)).completed)
      assert.are.equal(2, events_of(t.id, "completed"))
    end)
  end

  it("DELETE: a failed commit keeps the task and publishes no task.deleted", function()
    local t = create({ title = uid("delete me") })
    doomed(t.title, "DELETE", function()
      refused(req("DELETE", "/api/tasks/" .. t.id))
    end)
    assert.are.equal(200, (req("GET", "/api/tasks/" .. t.id)))
    assert.are.equal(0, events_of(t.id, "deleted"))
    assert.are.equal(204, (req("DELETE", "/api/tasks/" .. t.id)))
    assert.are.equal(2, events_of(t.id, "deleted"))
  end)

  local function nine(days) return tz.format((os.time() // 86400 + days) * 86400 + 9 * 3600, "UTC") end

  it("DELETE of an open occurrence (skip): the next occurrence and every event, or nothing", function()
    local t = create({ title = uid("skip me"), due_at = nine(1), recurrence = { rule = "FREQ=DAILY" } })
    doomed(t.title, "INSERT", function()
      refused(req("DELETE", "/api/tasks/" .. t.id))
    end)
    assert.are.equal(200, (req("GET", "/api/tasks/" .. t.id)))
    assert.are.equal(0, events_of(t.id, "deleted"))
    assert.are.equal("0", sql("SELECT count(*) FROM tasks WHERE spawned_from = " .. q(t.id)))
    assert.are.equal(204, (req("DELETE", "/api/tasks/" .. t.id)))
    local next_id = sql("SELECT id FROM tasks WHERE spawned_from = " .. q(t.id))
    same_tx(next_id, "created")
  end)

  it("DELETE scope=series: a failed commit keeps every occurrence and publishes nothing", function()
    local t = create({ title = uid("series me"), due_at = nine(1), recurrence = { rule = "FREQ=DAILY" } })
    doomed(t.title, "DELETE", function()
      refused(req("DELETE", "/api/tasks/" .. t.id .. "?scope=series"))
    end)
    assert.are.equal(200, (req("GET", "/api/tasks/" .. t.id)))
    assert.are.equal(0, events_of(t.id, "deleted"))
    assert.are.equal("0", sql("SELECT count(*) FROM task_series_spawns WHERE source_id = " .. q(t.id)))
  end)

  it("bulk: every action in one transaction with its events; a failed commit changes nothing", function()
    local ids, titles = {}, {}
    for i = 1, 3 do
      local t = create({ title = uid("bulk " .. i), due_at = nine(2) })
      ids[i], titles[i] = t.id, t.title
    end
    local kinds = { complete = "completed", reopen = "reopened", update = "updated", reschedule = "updated" }
    for _, action in ipairs { "complete", "reopen", "update", "reschedule" } do
      local body = { action = action, ids = ids }
      if action == "update" then body.changes = { priority = "medium" } end
      if action == "reschedule" then body.shift = { days = 1 } end
      local status, res = req("POST", "/api/tasks/bulk", body)
      assert.are.equal(200, status, json.encode(res))
      for _, id in ipairs(ids) do same_tx(id, kinds[action]) end
    end
    doomed(titles[2], "UPDATE", function()
      refused(req("POST", "/api/tasks/bulk", { action = "complete", ids = ids }))
    end)
    assert.are.equal("0", sql("SELECT count(*) FROM tasks WHERE completed AND id = ANY('{"
      .. table.concat(ids, ",") .. "}'::uuid[])"))
    doomed(titles[3], "DELETE", function()
      refused(req("POST", "/api/tasks/bulk", { action = "delete", ids = ids }))
    end)
    for _, id in ipairs(ids) do
      assert.are.equal(200, (req("GET", "/api/tasks/" .. id)))
      assert.are.equal(0, events_of(id, "deleted"))
    end
  end)

  describe("undo", function()
    -- The history consumer records changes asynchronously: the change of `kind` on `id`.
    local function change_of(id, kind)
      local got = h.eventually(function()
        local v = sql("SELECT id FROM task_history WHERE task_id = " .. q(id) .. " AND kind = " .. q(kind)
          .. " ORDER BY id DESC LIMIT 1")
        return v ~= "" and v
      end, 15)
      assert.is_truthy(got, "history has no " .. kind .. " of " .. id)
      return got
    end

    it("of an update", function()
      local t = create({ title = uid("undo update") })
      assert.are.equal(200, (req("PATCH", "/api/tasks/" .. t.id, { priority = "high" })))
      local change = change_of(t.id, "updated")
      doomed(t.title, "UPDATE", function()
        refused(req("POST", "/api/activity/" .. change .. "/undo"))
      end)
      assert.are.equal(1, events_of(t.id, "updated") / 2)
      assert.are.equal(200, (req("POST", "/api/activity/" .. change .. "/undo")))
      same_tx(t.id, "updated")
    end)

    it("of a creation (a delete)", function()
      local t = create({ title = uid("undo create") })
      local change = change_of(t.id, "created")
      doomed(t.title, "DELETE", function()
        refused(req("POST", "/api/activity/" .. change .. "/undo"))
      end)
      assert.are.equal(200, (req("GET", "/api/tasks/" .. t.id)))
      assert.are.equal(0, events_of(t.id, "deleted"))
    end)

    it("of a deletion (the task back)", function()
      local t = create({ title = uid("undo delete") })
      assert.are.equal(204, (req("DELETE", "/api/tasks/" .. t.id)))
      local change = change_of(t.id, "deleted")
      doomed(t.title, "INSERT", function()
        refused(req("POST", "/api/activity/" .. change .. "/undo"))
      end)
      assert.are.equal(404, (req("GET", "/api/tasks/" .. t.id)))
      assert.are.equal(1, events_of(t.id, "created") / 2)
      assert.are.equal(200, (req("POST", "/api/activity/" .. change .. "/undo")))
      same_tx(t.id, "created")
    end)
  end)

  it("the recurring spawn: the next occurrence and its task.created, or neither (retried)", function()
    local t = create({ title = uid("spawn me"), due_at = nine(1), recurrence = { rule = "FREQ=DAILY" } })
    doomed(t.title, "INSERT", function()
      assert.are.equal(200, (req("POST", "/api/tasks/" .. t.id .. "/complete")))
      -- the consumer tried at least once, and its transaction failed at COMMIT
      assert.is_truthy(h.eventually(function()
        for _, line in ipairs(host:log_lines()) do
          if line.msg == "bus: consumer transaction failed" and line.group == "recurring-task"
            and tostring(line.error):find("failure forced", 1, true) then return true end
        end
      end, 15), "the recurring-task consumer never tried")
      assert.are.equal("0", sql("SELECT count(*) FROM tasks WHERE spawned_from = " .. q(t.id)))
      assert.are.equal("0", sql("SELECT count(*) FROM task_series_spawns WHERE source_id = " .. q(t.id)))
      assert.are.equal("0", sql("SELECT count(*) FROM bus_outbox WHERE event->>'type' = 'task.created' "
        .. "AND event->'data'->'task_data'->>'spawned_from' = " .. q(t.id)))
    end)
    local next_id = h.eventually(function()
      local v = sql("SELECT id FROM tasks WHERE spawned_from = " .. q(t.id))
      return v ~= "" and v
    end, 15)
    assert.is_truthy(next_id, "the retry did not spawn")
    same_tx(next_id, "created")
  end)
end)

-- Retention (notification.retention): notifications older than
-- NOTIFICATION_RETENTION_DAYS and finished deliveries older than
-- NOTIFICATION_DELIVERY_RETENTION_DAYS are deleted in batches (of 3 here, so several
-- batches run); recent rows, and an old notification whose delivery is still pending,
-- stay; reminder rows fired or skipped longer ago than NOTIFICATION_RETENTION_DAYS go
-- too, scheduled ones stay. Rows are aged by SQL.
local h = require "spec.helpers"
local n = require "spec.support.notify"
local json = require "json"

local function count(host, sql) return tonumber(h.psql(sql, host.database_url)) end

describe("notification retention", function()
  it("prunes old notifications and finished deliveries in batches, keeps the rest", function()
    local host = n.start { env = {
      NOTIFICATION_RETENTION_DAYS = "30", NOTIFICATION_DELIVERY_RETENTION_DAYS = "7",
      NOTIFICATION_PRUNE_BATCH = "3", NOTIFICATION_PRUNE_INTERVAL_SECONDS = "1",
    } }
    finally(function() host:stop() end)
    local url = host.database_url
    -- notifications: 8 old (40 days), 2 recent (1 day), 1 old with a pending delivery;
    -- every notification but the pending one's has a delivered delivery with one attempt,
    -- aged like it; one recent notification also has a delivery 10 days old
    h.psql([[
      INSERT INTO notifications (id, user_id, title, remind_at, created_at)
      SELECT gen_random_uuid(), 'ret-' || g, 'old ' || g, now() - interval '40 days', now() - interval '40 days'
      FROM generate_series(1, 8) g;
      INSERT INTO notifications (id, user_id, title, remind_at, created_at)
      SELECT gen_random_uuid(), 'ret-new', 'new ' || g, now() - interval '1 day', now() - interval '1 day'
      FROM generate_series(1, 2) g;
      INSERT INTO notifications (id, user_id, title, remind_at, created_at)
      VALUES (gen_random_uuid(), 'ret-pending', 'old, delivery pending', now() - interval '40 days',
              now() - interval '40 days');
      INSERT INTO notification_deliveries (notification_id, user_id, channel, target, state, attempts,
                                           next_attempt_at, created_at)
      SELECT id, user_id, 'webhook', 'https://hooks.example.com/x', 'delivered', 1, created_at, created_at
      FROM notifications WHERE user_id <> 'ret-pending';
      INSERT INTO notification_deliveries (notification_id, user_id, channel, target, state, attempts,
                                           next_attempt_at, created_at)
      SELECT id, user_id, 'webhook', 'https://hooks.example.com/x', 'failed', 6, now(), now() - interval '10 days'
      FROM notifications WHERE title = 'new 1';
      INSERT INTO notification_deliveries (notification_id, user_id, channel, target, state, attempts,
                                           next_attempt_at, created_at)
      SELECT id, user_id, 'webhook', 'https://hooks.example.com/x', 'pending', 0, now() + interval '1 hour',
             created_at
      FROM notifications WHERE user_id = 'ret-pending';
      INSERT INTO notification_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status)
      SELECT id, 1, created_at, 5, 200 FROM notification_deliveries WHERE state <> 'pending';
    ]], url)
    assert.are.equal(11, count(host, "SELECT count(*) FROM notifications"))
    assert.are.equal(12, count(host, "SELECT count(*) FROM notification_deliveries"))
    assert.truthy(h.eventually(function()
      return count(host, "SELECT count(*) FROM notifications") == 3
        and count(host, "SELECT count(*) FROM notification_deliveries") == 3
    end, 15), host:log())
    -- what is left: the two recent notifications with their recent deliveries, and the
    -- old one whose delivery is pending
    assert.are.equal("new 1\nnew 2\nold, delivery pending",
      h.psql("SELECT title FROM notifications ORDER BY title", url))
    assert.are.equal("delivered|ret-new\ndelivered|ret-new\npending|ret-pending",
      h.psql("SELECT state || '|' || user_id FROM notification_deliveries ORDER BY state, user_id", url))
    assert.are.equal(2, count(host, "SELECT count(*) FROM notification_delivery_attempts"))
    -- the passes logged what they deleted: 9 finished deliveries older than 7 days, then
    -- the 8 old notifications (3 at a time)
    local pruned = { notifications = 0, deliveries = 0 }
    for line in host:log():gmatch("[^\n]+") do
      local ok, e = pcall(json.decode, line)
      if ok and type(e) == "table" and e.msg == "notification: housekeeping" then
        pruned.notifications = pruned.notifications + e.notifications
        pruned.deliveries = pruned.deliveries + e.deliveries
      end
    end
    assert.are.same({ notifications = 8, deliveries = 9 }, pruned)
  end)

  it("prunes reminder rows that will never fire again once older than the retention", function()
    local host = n.start { env = {
      NOTIFICATION_RETENTION_DAYS = "30", NOTIFICATION_PRUNE_BATCH = "3", NOTIFICATION_PRUNE_INTERVAL_SECONDS = "1",
    } }
    finally(function() host:stop() end)
    local url = host.database_url
    -- 7 fired 40 days ago and 2 skipped whose time was 40 days ago (pruned); fired a day
    -- ago, skipped a day ago, and two still scheduled (one due tomorrow, one set 40 days
    -- ago for a day 40 days ahead) stay
    h.psql([[
      INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state, fired_at)
      SELECT 'sched-ret', gen_random_uuid(), 'old-fired-' || g, now() - interval '40 days', 'fired',
             now() - interval '40 days'
      FROM generate_series(1, 7) g;
      INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state)
      SELECT 'sched-ret', gen_random_uuid(), 'old-skipped-' || g, now() - interval '40 days', 'skipped'
      FROM generate_series(1, 2) g;
      INSERT INTO reminder_schedule (user_id, task_id, rkey, remind_at, state, fired_at) VALUES
        ('sched-ret', gen_random_uuid(), 'new-fired', now() - interval '1 day', 'fired', now() - interval '1 day'),
        ('sched-ret', gen_random_uuid(), 'new-skipped', now() - interval '1 day', 'skipped', NULL),
        ('sched-ret', gen_random_uuid(), 'tomorrow', now() + interval '1 day', 'scheduled', NULL),
        ('sched-ret', gen_random_uuid(), 'far', now() + interval '40 days', 'scheduled', NULL);
    ]], url)
    assert.are.equal(13, count(host, "SELECT count(*) FROM reminder_schedule"))
    assert.truthy(h.eventually(function()
      return count(host, "SELECT count(*) FROM reminder_schedule") == 4
    end, 15), host:log())
    assert.are.equal("far|scheduled\nnew-fired|fired\nnew-skipped|skipped\ntomorrow|scheduled",
      h.psql("SELECT rkey || '|' || state FROM reminder_schedule ORDER BY rkey", url))
    local pruned = 0
    for line in host:log():gmatch("[^\n]+") do
      local ok, e = pcall(json.decode, line)
      if ok and type(e) == "table" and e.msg == "notification: housekeeping" then pruned = pruned + e.schedule end
    end
    assert.are.equal(9, pruned)
  end)

  it("keeps everything with 0 days, and warns about a value that is not a whole number", function()
    local host = n.start { env = {
      NOTIFICATION_RETENTION_DAYS = "0", NOTIFICATION_DELIVERY_RETENTION_DAYS = "soon",
      NOTIFICATION_PRUNE_INTERVAL_SECONDS = "1",
    } }
    finally(function() host:stop() end)
    h.psql([[INSERT INTO notifications (id, user_id, title, remind_at, created_at)
      VALUES (gen_random_uuid(), 'ret-keep', 'ancient', now() - interval '900 days', now() - interval '900 days')]],
      host.database_url)
    assert.truthy(h.eventually(function()
      return host:log():find("NOTIFICATION_DELIVERY_RETENTION_DAYS must be a whole number", 1, true)
    end, 5), host:log())
    h.sleep(4) -- past the first pass and a second one
    assert.are.equal(1, count(host, "SELECT count(*) FROM notifications"))
  end)
end)

-- spec/support/publish_reminder.lua: publishes one `reminder.due` event on `reminders`
-- the way a producer does (bus.publish inside a pg.tx, key = the user), for the
-- WebSocket specs. `DATABASE_URL=... todo-host script spec/support/publish_reminder.lua USER TASK_ID TITLE`
local pg = require "pg"
local bus = require "bus"

local user, task_id, title = arg[1], arg[2], arg[3]
local ok, err = pg.tx(function(tx)
  return bus.publish(tx, "reminders", "reminder.due", {
    task_id = task_id, title = title, due_at = "2026-12-05T09:00:00Z", remind_at = "2026-12-05T08:45:00Z",
    user_id = user,
  }, { key = user, subject = task_id })
end)
assert(ok, err)
print("published")

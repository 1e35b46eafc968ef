-- services/notification: the manifest of the notification bundle (issue 15).
-- It keeps the reminder schedule from `task-events` (group "notification",
-- notification.schedule), fires due reminders (notification.scheduler: a notification
-- row and `reminder.due` on `reminders`), delivers them over the user's channels with
-- retries (notification.delivery; the webhook today), prunes old rows and seals webhook
-- secrets (notification.retention), and serves the notifications,
-- settings and snooze routes. Every worker of every replica runs a scheduler and a
-- delivery worker; the database hands each reminder and delivery to one of them.
-- Loading this file does no I/O.

local guard = require "web.guard"
local bus = require "bus"
local task = require "task"
local handlers = require "notification.handlers"
local settings = require "notification.settings"
local snooze = require "notification.snooze"
local schedule = require "notification.schedule"
local scheduler = require "notification.scheduler"
local delivery = require "notification.delivery"
local retention = require "notification.retention"
local cron = require "bus.cron"

local function route(method, path, handler)
  return { method = method, path = path, handler = guard.authenticated(handler) }
end

return bus.define {
  name = "notification",
  routes = {
    route("GET", "/api/notifications", handlers.list),
    route("GET", "/api/notifications/unread-count", handlers.unread_count),
    route("POST", "/api/notifications/read-all", handlers.read_all),
    route("POST", "/api/notifications/:id/read", handlers.read),
    route("GET", "/api/notification-settings", settings.get),
    route("PUT", "/api/notification-settings", settings.put),
    route("GET", "/api/notification-settings/deliveries", settings.deliveries),
    route("POST", "/api/tasks/:id/snooze", snooze.snooze),
    -- BUS=dapr: the cron input binding reminder-tick (dapr/*/reminder-tick.yaml) wakes
    -- the scheduler once a minute, a safety net beside its own timers and NOTIFYs
    table.unpack(cron.routes("reminder-tick", function() scheduler.waker.poke() end)),
  },
  subscriptions = {
    { topic = "task-events", group = "notification", handler = schedule.on_event },
  },
  on_start = function()
    task.spawn(delivery.run)
    task.spawn(retention.run)
    scheduler.run()
  end,
}

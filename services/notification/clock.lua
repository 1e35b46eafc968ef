--- The notification bundle's clock: the shared reminders clock (lua/reminders/clock.lua),
-- so the scheduler and every snooze (REST or chat) compare against the same "now".
-- @module notification.clock
return require "reminders.clock"

-- services/recurring-task: the manifest of the recurring-task bundle (issue 5). It has
-- no routes: it consumes `task-events` as the "recurring-task" group and, when an
-- occurrence of a series is completed, creates the next one (consumer.lua). Replicas
-- share the group; the database makes sure each occurrence spawns at most one next.
-- Loading this file does no I/O.

local bus = require "bus"
local consumer = require "recurring-task.consumer"

return bus.define {
  name = "recurring-task",
  routes = {},
  subscriptions = {
    { topic = "task-events", group = "recurring-task", handler = consumer.on_event },
  },
}

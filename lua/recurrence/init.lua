--- Recurrence: RFC 5545 rules expanded in local wall-clock time, English
-- descriptions and phrase parsing. This module re-exports the public API of
-- recurrence.rrule, recurrence.describe and recurrence.phrase.
-- @module recurrence

local rrule = require "recurrence.rrule"

return {
  --- The supported range of instants, in epoch seconds: 0001-01-01T00:00:00Z to
  -- 9999-12-31T23:59:59Z (what the tasks table's CHECK allows and RFC 3339 can write).
  -- Occurrences outside it are refused (the API answers 422; a series ends there).
  EPOCH_MIN = -62135596800,
  EPOCH_MAX = 253402300799,
  --- Parse a rule (see `recurrence.rrule.parse`).
  parse = rrule.parse,
  --- Check a rule; returns its canonical text or nil, message.
  validate = rrule.validate,
  --- Canonical text of a parsed rule.
  to_string = rrule.to_string,
  --- Expand a rule into a list of epochs (see `recurrence.rrule.expand`).
  expand = rrule.expand,
  --- The first occurrence after an instant (see `recurrence.rrule.next_after`).
  next_after = rrule.next_after,
  --- An iterator over occurrences (see `recurrence.rrule.iter`).
  iter = rrule.iter,
  --- Describe a rule in English (see `recurrence.describe`).
  describe = require "recurrence.describe",
  --- Parse an English phrase into a rule (see `recurrence.phrase`).
  parse_phrase = require "recurrence.phrase",
}

--- Recurrence: RFC 5545 rules expanded in local wall-clock time, English
-- descriptions and phrase parsing. This module re-exports the public API of
-- recurrence.rrule, recurrence.describe and recurrence.phrase.
-- @module recurrence

local rrule = require "recurrence.rrule"

return {
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

// Reminders as the editor shows them: an offset before the due time ({"before": "PT15M"},
// an ISO 8601 duration) or an absolute instant ({"at": RFC 3339}).
import type { Reminder } from "./types";

export type OffsetUnit = "minutes" | "hours" | "days";

export interface ReminderRow {
  kind: "before" | "at";
  amount: number;
  unit: OffsetUnit;
  at: string; // datetime-local value (yyyy-mm-ddThh:mm) in the task's zone
}

export function offsetToDuration(amount: number, unit: OffsetUnit): string {
  const n = Math.max(0, Math.floor(amount));
  return unit === "days" ? `P${n}D` : unit === "hours" ? `PT${n}H` : `PT${n}M`;
}

/** The row of a simple duration (PT15M, PT2H, P1D); other durations read as minutes. */
export function durationToOffset(d: string): { amount: number; unit: OffsetUnit } {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(d);
  if (!m) return { amount: 15, unit: "minutes" };
  const [days, hours, minutes] = [Number(m[1] ?? 0), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  if (days && !hours && !minutes) return { amount: days, unit: "days" };
  if (hours && !minutes && !days) return { amount: hours, unit: "hours" };
  return { amount: days * 1440 + hours * 60 + minutes, unit: "minutes" };
}

export function describeReminder(r: Reminder): string {
  if ("before" in r) {
    const { amount, unit } = durationToOffset(r.before);
    return `${amount} ${amount === 1 ? unit.slice(0, -1) : unit} before`;
  }
  return `at ${r.at}`;
}

// The recurrence builder's model: presets that map to an RRULE and back, so the editor can
// show a stored rule as the preset it is (or as "custom"). The RRULE is evaluated by the
// API (lua/recurrence); here it is only assembled and recognised.

export type Preset = "none" | "daily" | "weekdays" | "weekly" | "monthly" | "yearly" | "custom";

export const WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface RecurrenceState {
  preset: Preset;
  interval: number; // every N days / weeks / months / years
  weekdays: Weekday[]; // weekly
  custom: string; // the RRULE when preset is custom
  fromCompletion: boolean;
}

export const NO_RECURRENCE: RecurrenceState = { preset: "none", interval: 1, weekdays: [], custom: "", fromCompletion: false };

/** The RRULE of a builder state, or null for none / an empty custom rule. */
export function buildRule(s: RecurrenceState): string | null {
  const every = s.interval > 1 ? `;INTERVAL=${Math.floor(s.interval)}` : "";
  switch (s.preset) {
    case "none":
      return null;
    case "daily":
      return `FREQ=DAILY${every}`;
    case "weekdays":
      return "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR";
    case "weekly":
      return `FREQ=WEEKLY${every}` + (s.weekdays.length ? `;BYDAY=${sortDays(s.weekdays).join(",")}` : "");
    case "monthly":
      return `FREQ=MONTHLY${every}`;
    case "yearly":
      return `FREQ=YEARLY${every}`;
    case "custom": {
      const r = s.custom.trim().replace(/^RRULE:/i, "");
      return r || null;
    }
  }
}

function sortDays(days: Weekday[]): Weekday[] {
  return WEEKDAYS.filter((d) => days.includes(d));
}

/** The builder state showing a stored rule: a preset when it is one, else custom. */
export function parseRule(rule: string | null | undefined, from?: string): RecurrenceState {
  const fromCompletion = from === "completion";
  if (!rule) return { ...NO_RECURRENCE, fromCompletion };
  const text = rule.trim().replace(/^RRULE:/i, "");
  const parts: Record<string, string> = {};
  for (const p of text.split(";")) {
    const [k, v] = p.split("=");
    if (k && v !== undefined) parts[k.toUpperCase()] = v.toUpperCase();
  }
  const custom: RecurrenceState = { preset: "custom", interval: 1, weekdays: [], custom: text, fromCompletion };
  const keys = Object.keys(parts).filter((k) => k !== "FREQ" && k !== "INTERVAL" && k !== "BYDAY");
  if (keys.length) return custom;
  const interval = parts.INTERVAL ? Number(parts.INTERVAL) : 1;
  if (!Number.isInteger(interval) || interval < 1) return custom;
  const days = parts.BYDAY ? parts.BYDAY.split(",") : [];
  if (!days.every((d) => (WEEKDAYS as readonly string[]).includes(d))) return custom;
  const base = { interval, weekdays: [] as Weekday[], custom: "", fromCompletion };
  switch (parts.FREQ) {
    case "DAILY":
      return days.length ? custom : { ...base, preset: "daily" };
    case "WEEKLY":
      if (interval === 1 && sortDays(days as Weekday[]).join(",") === "MO,TU,WE,TH,FR") return { ...base, preset: "weekdays" };
      return { ...base, preset: "weekly", weekdays: days as Weekday[] };
    case "MONTHLY":
      return days.length ? custom : { ...base, preset: "monthly" };
    case "YEARLY":
      return days.length ? custom : { ...base, preset: "yearly" };
    default:
      return custom;
  }
}

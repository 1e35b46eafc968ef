"use client";
// The recurrence builder: presets (daily, weekdays, weekly on chosen days, monthly,
// yearly, every N), a custom RRULE, "repeat from completion", and the next occurrences
// with the API's own description (GET /api/recurrence/preview), or its error message.
import { useEffect, useState } from "react";
import { api, toQuery } from "@/lib/api";
import { buildRule, WEEKDAYS, type Preset, type RecurrenceState, type Weekday } from "@/lib/recurrence";
import { DateTime } from "luxon";

const PRESETS: { value: Preset; label: string }[] = [
  { value: "none", label: "Does not repeat" },
  { value: "daily", label: "Daily" },
  { value: "weekdays", label: "Every weekday" },
  { value: "weekly", label: "Weekly" },
  { value: "monthly", label: "Monthly" },
  { value: "yearly", label: "Yearly" },
  { value: "custom", label: "Custom RRULE" },
];

const DAY_LABEL: Record<Weekday, string> = { MO: "Mon", TU: "Tue", WE: "Wed", TH: "Thu", FR: "Fri", SA: "Sat", SU: "Sun" };

interface Preview {
  rule: string;
  description: string;
  occurrences: string[];
}

export default function RecurrenceBuilder({
  value,
  onChange,
  start,
  tz,
  delayMs = 300,
}: {
  value: RecurrenceState;
  onChange: (s: RecurrenceState) => void;
  start: string; // RFC 3339, the due time ("" when none)
  tz: string;
  delayMs?: number;
}) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const rule = buildRule(value);
  const set = (patch: Partial<RecurrenceState>) => onChange({ ...value, ...patch });

  useEffect(() => {
    if (!rule) {
      setPreview(null);
      setError(null);
      return;
    }
    let stale = false;
    const t = setTimeout(async () => {
      try {
        const r = await api<Preview>("/api/recurrence/preview" + toQuery({ rule, start: start || undefined, tz, count: 5 }));
        if (!stale) {
          setPreview(r.data);
          setError(null);
        }
      } catch (e) {
        if (!stale) {
          setPreview(null);
          setError(e instanceof Error ? e.message : String(e));
        }
      }
    }, delayMs);
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [rule, start, tz, delayMs]);

  const unit = { daily: "days", weekly: "weeks", monthly: "months", yearly: "years" }[value.preset as string];

  return (
    <fieldset className="recurrence">
      <legend>Repeat</legend>
      <label>
        Pattern
        <select aria-label="Pattern" value={value.preset} onChange={(e) => set({ preset: e.target.value as Preset })}>
          {PRESETS.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      {unit && (
        <label>
          Every
          <input
            type="number"
            min={1}
            max={999}
            className="narrow"
            value={value.interval}
            onChange={(e) => set({ interval: Math.max(1, Number(e.target.value) || 1) })}
          />{" "}
          {unit}
        </label>
      )}
      {value.preset === "weekly" && (
        <fieldset className="days">
          <legend>On</legend>
          {WEEKDAYS.map((d) => (
            <label key={d} className="inline">
              <input
                type="checkbox"
                checked={value.weekdays.includes(d)}
                onChange={() => set({ weekdays: value.weekdays.includes(d) ? value.weekdays.filter((x) => x !== d) : [...value.weekdays, d] })}
              />
              {DAY_LABEL[d]}
            </label>
          ))}
        </fieldset>
      )}
      {value.preset === "custom" && (
        <label>
          RRULE
          <input value={value.custom} onChange={(e) => set({ custom: e.target.value })} placeholder="FREQ=MONTHLY;BYDAY=-1FR" spellCheck={false} />
        </label>
      )}
      {value.preset !== "none" && (
        <label className="inline">
          <input type="checkbox" checked={value.fromCompletion} onChange={(e) => set({ fromCompletion: e.target.checked })} />
          Count from when I complete it
        </label>
      )}
      <div aria-live="polite" data-testid="recurrence-preview">
        {error && <p className="error">{error}</p>}
        {preview && (
          <>
            <p>
              <strong>{preview.description}</strong>
            </p>
            <ol className="occurrences" aria-label="Next occurrences">
              {preview.occurrences.map((o) => (
                <li key={o}>{DateTime.fromISO(o, { setZone: true }).toFormat("ccc d LLL yyyy, HH:mm")}</li>
              ))}
            </ol>
          </>
        )}
      </div>
    </fieldset>
  );
}

// The recurrence builder: presets to RRULE and back, and the component asking the API for
// the next occurrences (and showing its error message for a bad custom rule).
import { describe, expect, it } from "vitest";
import { useState } from "react";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { buildRule, NO_RECURRENCE, parseRule, type RecurrenceState } from "@/lib/recurrence";
import RecurrenceBuilder from "@/components/RecurrenceBuilder";
import { installFetch, json } from "./fake-fetch";

describe("buildRule / parseRule", () => {
  it("assembles the RRULE of each preset", () => {
    expect(buildRule(NO_RECURRENCE)).toBeNull();
    expect(buildRule({ ...NO_RECURRENCE, preset: "daily", interval: 3 })).toBe("FREQ=DAILY;INTERVAL=3");
    expect(buildRule({ ...NO_RECURRENCE, preset: "weekdays" })).toBe("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR");
    expect(buildRule({ ...NO_RECURRENCE, preset: "weekly", weekdays: ["TH", "MO"] })).toBe("FREQ=WEEKLY;BYDAY=MO,TH");
    expect(buildRule({ ...NO_RECURRENCE, preset: "custom", custom: "RRULE:FREQ=MONTHLY;BYDAY=-1FR" })).toBe("FREQ=MONTHLY;BYDAY=-1FR");
  });

  it("shows a stored rule as its preset, or as custom", () => {
    expect(parseRule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR").preset).toBe("weekdays");
    expect(parseRule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH")).toMatchObject({ preset: "weekly", interval: 2, weekdays: ["MO", "TH"] });
    expect(parseRule("FREQ=MONTHLY;BYDAY=-1FR")).toMatchObject({ preset: "custom", custom: "FREQ=MONTHLY;BYDAY=-1FR" });
    expect(parseRule("FREQ=DAILY;COUNT=5").preset).toBe("custom");
    expect(parseRule("FREQ=DAILY", "completion")).toMatchObject({ preset: "daily", fromCompletion: true });
    for (const r of ["FREQ=DAILY;INTERVAL=4", "FREQ=YEARLY", "FREQ=WEEKLY;BYDAY=SA,SU"]) expect(buildRule(parseRule(r))).toBe(r);
  });
});

function Harness({ initial }: { initial: RecurrenceState }) {
  const [s, setS] = useState(initial);
  return <RecurrenceBuilder value={s} onChange={setS} start="2026-05-04T09:30:00+02:00" tz="Europe/Paris" delayMs={0} />;
}

describe("RecurrenceBuilder", () => {
  it("previews the next occurrences of the chosen days", async () => {
    const calls = installFetch({
      "GET /api/recurrence/preview": (c) => {
        const q = new URL(c.path, "http://x").searchParams;
        return json(200, {
          rule: q.get("rule"),
          description: `described ${q.get("rule")}`,
          tz: q.get("tz"),
          occurrences: ["2026-05-04T09:30:00+02:00", "2026-05-07T09:30:00+02:00"],
        });
      },
    });
    render(<Harness initial={{ ...NO_RECURRENCE, preset: "weekly", weekdays: ["MO"] }} />);
    fireEvent.click(screen.getByLabelText("Thu"));
    await waitFor(() => expect(screen.getByText("described FREQ=WEEKLY;BYDAY=MO,TH")).toBeTruthy());
    const last = new URL(calls.at(-1)!.path, "http://x").searchParams;
    expect(last.get("rule")).toBe("FREQ=WEEKLY;BYDAY=MO,TH");
    expect(last.get("tz")).toBe("Europe/Paris");
    expect(last.get("start")).toBe("2026-05-04T09:30:00+02:00");
    const items = screen.getByRole("list", { name: "Next occurrences" }).querySelectorAll("li");
    expect([...items].map((li) => li.textContent)).toEqual(["Mon 4 May 2026, 09:30", "Thu 7 May 2026, 09:30"]);
  });

  it("shows the API's message for a bad custom rule", async () => {
    installFetch({
      "GET /api/recurrence/preview": () =>
        json(422, { error: { code: "invalid_field", field: "rule", message: "rule is not a valid RRULE: BYDAY: 'XX' is not a weekday" } }),
    });
    render(<Harness initial={{ ...NO_RECURRENCE, preset: "custom", custom: "FREQ=WEEKLY;BYDAY=XX" }} />);
    await waitFor(() => expect(screen.getByText(/'XX' is not a weekday/)).toBeTruthy());
    expect(screen.queryByRole("list", { name: "Next occurrences" })).toBeNull();
  });

  it("asks nothing when the task does not repeat", async () => {
    const calls = installFetch({});
    render(<Harness initial={NO_RECURRENCE} />);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual([]);
  });
});

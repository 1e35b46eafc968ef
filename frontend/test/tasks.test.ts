// The list's pure logic: the query of the filters, which tasks a live event keeps in the
// list, overdue and due-today.
import { describe, expect, it } from "vitest";
import { DEFAULT_FILTERS, isDueToday, isOverdue, listQuery, matchesFilters, toInstant } from "@/lib/tasks";
import { applyLiveEvent } from "@/hooks/useTaskList";
import type { Task } from "@/lib/types";

const t = (over: Partial<Task>): Task => ({
  id: "a", title: "Report", description: null, completed: false, completed_at: null, priority: "none", tags: [],
  due_at: null, tz: null, recurrence: null, reminders: null, created_at: "", updated_at: "", version: 1,
  series_id: null, occurrence_index: 1, spawned_from: null, ...over,
});
const now = new Date("2026-05-04T12:00:00Z");

describe("listQuery", () => {
  it("names the API's parameters; the due range covers whole local days", () => {
    const q = listQuery({ ...DEFAULT_FILTERS, priority: ["high", "low"], tags: ["a", "b"], tagsMode: "all", dueAfter: "2026-05-04", dueBefore: "2026-05-04", overdue: true, q: " tax ", sort: "due", order: "desc" }, "Europe/Paris");
    expect(q).toMatchObject({ status: "pending", priority: ["high", "low"], tag: ["a", "b"], tags_mode: "all", overdue: "true", q: "tax", sort: "due", order: "desc" });
    expect(q.due_after).toBe("2026-05-04T00:00:00.000+02:00");
    expect(q.due_before).toBe("2026-05-05T00:00:00.000+02:00");
  });
});

describe("live events in the list", () => {
  it("adds a matching task, removes one that no longer matches, and drops deletions", () => {
    const f = { ...DEFAULT_FILTERS, tags: ["home"] };
    let list: Task[] = [];
    list = applyLiveEvent(list, { type: "task.created", event_id: 1, task: t({ id: "x", tags: ["home"] }) }, f, now);
    list = applyLiveEvent(list, { type: "task.created", event_id: 2, task: t({ id: "y", tags: ["work"] }) }, f, now);
    expect(list.map((x) => x.id)).toEqual(["x"]);
    list = applyLiveEvent(list, { type: "task.completed", event_id: 3, task: t({ id: "x", tags: ["home"], completed: true, version: 2 }) }, f, now);
    expect(list).toEqual([]); // the open-tasks list no longer shows it
    list = applyLiveEvent([t({ id: "z" })], { type: "task.deleted", event_id: 4, task_id: "z" }, DEFAULT_FILTERS, now);
    expect(list).toEqual([]);
  });

  it("never replaces a newer version with an older one", () => {
    const list = [t({ id: "x", title: "new", version: 3 })];
    expect(applyLiveEvent(list, { type: "task.updated", event_id: 9, task: t({ id: "x", title: "old", version: 2 }) }, DEFAULT_FILTERS, now)[0].title).toBe("new");
  });

  it("matches search words and the due range", () => {
    expect(matchesFilters(t({ title: "Quarterly report" }), { ...DEFAULT_FILTERS, q: "report quarterly" }, now)).toBe(true);
    expect(matchesFilters(t({ title: "Quarterly report" }), { ...DEFAULT_FILTERS, q: "tax" }, now)).toBe(false);
    const f = { ...DEFAULT_FILTERS, dueAfter: "2026-05-04", dueBefore: "2026-05-04" };
    expect(matchesFilters(t({ due_at: "2026-05-04T21:59:00Z" }), f, now, "Europe/Paris")).toBe(true);
    expect(matchesFilters(t({ due_at: "2026-05-04T22:00:00Z" }), f, now, "Europe/Paris")).toBe(false);
  });
});

describe("overdue and due today", () => {
  it("classifies by the instant and the browser's day", () => {
    expect(isOverdue(t({ due_at: "2026-05-04T11:59:00Z" }), now)).toBe(true);
    expect(isOverdue(t({ due_at: "2026-05-04T11:59:00Z", completed: true }), now)).toBe(false);
    expect(isDueToday(t({ due_at: "2026-05-04T21:00:00Z" }), now, "Europe/Paris")).toBe(true);
    expect(isDueToday(t({ due_at: "2026-05-04T23:00:00Z" }), now, "Europe/Paris")).toBe(false); // 01:00 on the 5th in Paris
  });

  it("turns a local date and time into an instant with the zone's offset", () => {
    expect(toInstant("2026-03-29", "09:00", "Europe/Paris")).toBe("2026-03-29T09:00:00+02:00");
    expect(toInstant("2026-03-28", "09:00", "Europe/Paris")).toBe("2026-03-28T09:00:00+01:00");
    expect(toInstant("", "09:00", "UTC")).toBe("");
  });
});

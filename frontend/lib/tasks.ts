// Task list logic with no React in it: the filter state and its query string, whether a
// task belongs in the list shown (for live events), overdue / due-today, and due times
// in a task's own zone (luxon).
import { DateTime } from "luxon";
import type { Priority, Task } from "./types";
import type { Query } from "./api";

export type SortKey = "created" | "updated" | "due" | "priority" | "title" | "relevance";

export interface Filters {
  status: "all" | "pending" | "completed";
  priority: Priority[];
  tags: string[];
  tagsMode: "any" | "all";
  dueAfter: string; // yyyy-mm-dd, local to the browser, inclusive
  dueBefore: string; // yyyy-mm-dd, inclusive in the UI (sent as the next day, exclusive)
  overdue: boolean;
  q: string;
  sort: SortKey | "";
  order: "" | "asc" | "desc";
}

export const DEFAULT_FILTERS: Filters = {
  status: "pending",
  priority: [],
  tags: [],
  tagsMode: "any",
  dueAfter: "",
  dueBefore: "",
  overdue: false,
  q: "",
  sort: "",
  order: "",
};

export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** The list query of these filters (the API's parameter names). */
export function listQuery(f: Filters, zone = browserZone()): Query {
  const day = (d: string) => DateTime.fromISO(d, { zone });
  return {
    status: f.status === "all" ? undefined : f.status,
    priority: f.priority,
    tag: f.tags,
    tags_mode: f.tags.length > 1 && f.tagsMode === "all" ? "all" : undefined,
    due_after: f.dueAfter ? day(f.dueAfter).startOf("day").toISO() : undefined,
    due_before: f.dueBefore ? day(f.dueBefore).plus({ days: 1 }).startOf("day").toISO() : undefined,
    overdue: f.overdue ? "true" : undefined,
    q: f.q.trim() || undefined,
    sort: f.sort || undefined,
    order: f.order || undefined,
  };
}

/** Whether a task (created or changed live) belongs in the list these filters show. */
export function matchesFilters(t: Task, f: Filters, now = new Date(), zone = browserZone()): boolean {
  if (f.status === "pending" && t.completed) return false;
  if (f.status === "completed" && !t.completed) return false;
  if (f.priority.length && !f.priority.includes(t.priority)) return false;
  if (f.tags.length) {
    const has = (tag: string) => t.tags.includes(tag.toLowerCase());
    const ok = f.tagsMode === "all" && f.tags.length > 1 ? f.tags.every(has) : f.tags.some(has);
    if (!ok) return false;
  }
  if (f.overdue && !isOverdue(t, now)) return false;
  const q = listQuery(f, zone);
  if (q.due_after && (!t.due_at || Date.parse(t.due_at) < Date.parse(String(q.due_after)))) return false;
  if (q.due_before && (!t.due_at || Date.parse(t.due_at) >= Date.parse(String(q.due_before)))) return false;
  if (f.q.trim()) {
    // The API ranks with PostgreSQL text search; here, every word must appear.
    const text = (t.title + " " + (t.description ?? "")).toLowerCase();
    if (!f.q.toLowerCase().split(/\s+/).filter(Boolean).every((w) => text.includes(w))) return false;
  }
  return true;
}

export function isOverdue(t: Task, now = new Date()): boolean {
  return !t.completed && !!t.due_at && Date.parse(t.due_at) < now.getTime();
}

/** Due later today (in the browser's zone) and not overdue yet. */
export function isDueToday(t: Task, now = new Date(), zone = browserZone()): boolean {
  if (t.completed || !t.due_at || isOverdue(t, now)) return false;
  const due = DateTime.fromISO(t.due_at).setZone(zone);
  return due.hasSame(DateTime.fromJSDate(now).setZone(zone), "day");
}

/** "Fri 4 Dec, 09:00" in the task's zone (or the browser's), with the zone when it differs. */
export function formatDue(t: Pick<Task, "due_at" | "tz">, zone = browserZone()): string {
  if (!t.due_at) return "";
  const z = t.tz || zone;
  const d = DateTime.fromISO(t.due_at).setZone(z);
  const s = d.toFormat("ccc d LLL yyyy, HH:mm");
  return z === zone ? s : `${s} (${z})`;
}

/** The RFC 3339 instant of a local date and time in a zone ("" when no date). */
export function toInstant(date: string, time: string, zone: string): string {
  if (!date) return "";
  const d = DateTime.fromISO(`${date}T${time || "09:00"}`, { zone });
  return d.isValid ? (d.toISO({ suppressMilliseconds: true }) ?? "") : "";
}

/** The local date and time of an instant in a zone, for the editor's inputs. */
export function fromInstant(iso: string | null, zone: string): { date: string; time: string } {
  if (!iso) return { date: "", time: "" };
  const d = DateTime.fromISO(iso).setZone(zone);
  return { date: d.toISODate() ?? "", time: d.toFormat("HH:mm") };
}

/** Replace or insert a task in a list by id; returns a new array. */
export function upsert(list: Task[], t: Task): Task[] {
  const i = list.findIndex((x) => x.id === t.id);
  if (i === -1) return [t, ...list];
  // An older version (a late event) never replaces a newer one.
  if (list[i].version > t.version) return list;
  const copy = list.slice();
  copy[i] = t;
  return copy;
}

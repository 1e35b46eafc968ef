"use client";
// The task list screen: quick add, filters (status, priority, tags, due range, overdue),
// search, sort, keyset pages ("Load more"), bulk complete / delete / reschedule. Overdue
// and due-today tasks are marked in words as well as colour.
import Link from "next/link";
import { useState } from "react";
import { api } from "@/lib/api";
import { DEFAULT_FILTERS, formatDue, isDueToday, isOverdue, type Filters, type SortKey } from "@/lib/tasks";
import { PRIORITIES, type Priority, type Task } from "@/lib/types";
import { useTaskList } from "@/hooks/useTaskList";
import ChatPanel from "./ChatPanel";
import QuickAdd from "./QuickAdd";
import { useToast } from "./Toasts";

const SORTS: { value: SortKey | ""; label: string }[] = [
  { value: "", label: "Default" },
  { value: "due", label: "Due date" },
  { value: "priority", label: "Priority" },
  { value: "created", label: "Created" },
  { value: "updated", label: "Updated" },
  { value: "title", label: "Title" },
  { value: "relevance", label: "Relevance (search)" },
];

export default function TaskList() {
  const [filters, setFilters] = useState<Filters>(DEFAULT_FILTERS);
  const [tagText, setTagText] = useState("");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [shiftDays, setShiftDays] = useState(1);
  const [rescheduleTime, setRescheduleTime] = useState("");
  const [busy, setBusy] = useState(false);
  const [chatOpen, setChatOpen] = useState(false);
  const list = useTaskList(filters);
  const toast = useToast();

  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setFilters((f) => ({ ...f, [k]: v }));
  const togglePriority = (p: Priority) =>
    set("priority", filters.priority.includes(p) ? filters.priority.filter((x) => x !== p) : [...filters.priority, p]);
  const toggleSelected = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const allSelected = list.items.length > 0 && list.items.every((t) => selected.has(t.id));

  async function complete(t: Task) {
    try {
      const r = await api<Task>(`/api/tasks/${t.id}/${t.completed ? "reopen" : "complete"}`, { method: "POST" });
      list.apply(r.data);
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    }
  }

  async function bulk(action: "complete" | "delete" | "reschedule") {
    const ids = [...selected];
    if (!ids.length) return;
    if (action === "delete" && !window.confirm(`Delete ${ids.length} task(s)?`)) return;
    const body: Record<string, unknown> = { action, ids };
    if (action === "reschedule") {
      if (shiftDays) body.shift = { days: shiftDays };
      if (rescheduleTime) body.time = rescheduleTime;
      if (!body.shift && !body.time) return toast("Choose a number of days or a time", "error");
    }
    setBusy(true);
    try {
      const r = await api<{ changed: number; items?: Task[]; ids?: string[] }>("/api/tasks/bulk", { method: "POST", body });
      if (action === "delete") list.remove(ids);
      else r.data.items?.forEach(list.apply);
      toast(`${action === "delete" ? "Deleted" : action === "complete" ? "Completed" : "Rescheduled"} ${r.data.changed} task(s)`);
      setSelected(new Set());
    } catch (e) {
      toast(e instanceof Error ? e.message : String(e), "error");
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className={chatOpen ? "with-chat" : undefined}>
    {chatOpen && (
      <aside className="chat-aside" aria-label="Assistant">
        <h2>Assistant</h2>
        <ChatPanel compact />
      </aside>
    )}
    <section aria-labelledby="tasks-heading">
      <div className="row between">
        <h1 id="tasks-heading">Tasks</h1>
        <div className="row">
          <button type="button" aria-expanded={chatOpen} onClick={() => setChatOpen((o) => !o)}>
            {chatOpen ? "Hide assistant" : "Ask the assistant"}
          </button>
          <Link className="button" href="/tasks/new">
            New task
          </Link>
        </div>
      </div>
      <QuickAdd onCreated={list.apply} />

      <form className="filters" role="search" aria-label="Filter tasks" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" value={filters.q} onChange={(e) => set("q", e.target.value)} placeholder="Words in title or notes" />
        </label>
        <label>
          Status
          <select aria-label="Status" value={filters.status} onChange={(e) => set("status", e.target.value as Filters["status"])}>
            <option value="pending">Open</option>
            <option value="completed">Done</option>
            <option value="all">All</option>
          </select>
        </label>
        <fieldset>
          <legend>Priority</legend>
          {PRIORITIES.map((p) => (
            <label key={p} className="inline">
              <input type="checkbox" checked={filters.priority.includes(p)} onChange={() => togglePriority(p)} />
              {p}
            </label>
          ))}
        </fieldset>
        <label>
          Tags
          <input
            value={tagText}
            onChange={(e) => setTagText(e.target.value)}
            onBlur={() => set("tags", tagText.split(/[\s,]+/).map((t) => t.replace(/^#/, "").toLowerCase()).filter(Boolean))}
            onKeyDown={(e) => {
              if (e.key === "Enter") (e.target as HTMLInputElement).blur();
            }}
            placeholder="home, work"
          />
        </label>
        <label>
          Tags match
          <select aria-label="Tags match" value={filters.tagsMode} onChange={(e) => set("tagsMode", e.target.value as Filters["tagsMode"])}>
            <option value="any">any</option>
            <option value="all">all</option>
          </select>
        </label>
        <label>
          Due from
          <input type="date" value={filters.dueAfter} onChange={(e) => set("dueAfter", e.target.value)} />
        </label>
        <label>
          Due until
          <input type="date" value={filters.dueBefore} onChange={(e) => set("dueBefore", e.target.value)} />
        </label>
        <label className="inline">
          <input type="checkbox" checked={filters.overdue} onChange={(e) => set("overdue", e.target.checked)} />
          Overdue only
        </label>
        <label>
          Sort by
          <select aria-label="Sort by" value={filters.sort} onChange={(e) => set("sort", e.target.value as Filters["sort"])}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Order
          <select aria-label="Order" value={filters.order} onChange={(e) => set("order", e.target.value as Filters["order"])}>
            <option value="">Default</option>
            <option value="asc">Ascending</option>
            <option value="desc">Descending</option>
          </select>
        </label>
        <button
          type="button"
          onClick={() => {
            setFilters(DEFAULT_FILTERS);
            setTagText("");
          }}
        >
          Clear filters
        </button>
      </form>

      <div className="bulk" role="toolbar" aria-label="Bulk actions">
        <label className="inline">
          <input
            type="checkbox"
            checked={allSelected}
            onChange={() => setSelected(allSelected ? new Set() : new Set(list.items.map((t) => t.id)))}
          />
          Select all shown
        </label>
        <span aria-live="polite">{selected.size} selected</span>
        <button type="button" disabled={!selected.size || busy} onClick={() => bulk("complete")}>
          Complete
        </button>
        <button type="button" disabled={!selected.size || busy} onClick={() => bulk("delete")}>
          Delete
        </button>
        <label>
          Shift days
          <input type="number" value={shiftDays} onChange={(e) => setShiftDays(Number(e.target.value))} className="narrow" />
        </label>
        <label>
          At time
          <input type="time" value={rescheduleTime} onChange={(e) => setRescheduleTime(e.target.value)} />
        </label>
        <button type="button" disabled={!selected.size || busy} onClick={() => bulk("reschedule")}>
          Reschedule
        </button>
      </div>

      {list.error && (
        <p role="alert" className="error">
          {list.error}
        </p>
      )}
      <ul className="tasks" aria-label="Task list" aria-busy={list.loading}>
        {list.items.map((t) => {
          const overdue = isOverdue(t);
          const today = isDueToday(t);
          return (
            <li key={t.id} className={`task${overdue ? " overdue" : ""}${today ? " today" : ""}${t.completed ? " done" : ""}`} data-testid="task-row">
              <input type="checkbox" aria-label={`Select ${t.title}`} checked={selected.has(t.id)} onChange={() => toggleSelected(t.id)} />
              <button type="button" className="check" aria-pressed={t.completed} aria-label={`${t.completed ? "Reopen" : "Complete"} ${t.title}`} onClick={() => complete(t)}>
                {t.completed ? "✓" : ""}
              </button>
              <div className="body">
                <Link href={`/tasks/${t.id}`} className="title">
                  {t.title}
                </Link>
                <div className="meta">
                  {t.priority !== "none" && <span className={`prio prio-${t.priority}`}>{t.priority}</span>}
                  {t.due_at && <span className="due">{formatDue(t)}</span>}
                  {overdue && <span className="flag flag-overdue">Overdue</span>}
                  {today && <span className="flag flag-today">Due today</span>}
                  {t.recurrence && <span title={t.recurrence.rule}>↻ {t.recurrence.description ?? "repeats"}</span>}
                  {t.tags.map((g) => (
                    <span key={g} className="tag">
                      #{g}
                    </span>
                  ))}
                </div>
              </div>
            </li>
          );
        })}
      </ul>
      {!list.loading && list.items.length === 0 && <p className="muted">No tasks match.</p>}
      {list.hasMore && (
        <button type="button" onClick={() => list.loadMore()} disabled={list.loading}>
          Load more
        </button>
      )}
    </section>
    </div>
  );
}

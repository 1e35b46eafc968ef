"use client";
// The task editor: title, description, priority, tags (autocomplete from /api/tags), due
// date and time in a time zone (default: the browser's), reminders (offsets and absolute
// times), recurrence (RecurrenceBuilder). Saving sends only the fields changed, with
// If-Match; a 412 opens ConflictDialog.
import { useRouter } from "next/navigation";
import { useEffect, useMemo, useState } from "react";
import { api } from "@/lib/api";
import { buildRule, parseRule, type RecurrenceState } from "@/lib/recurrence";
import { durationToOffset, offsetToDuration, type ReminderRow } from "@/lib/reminders";
import { browserZone, fromInstant, toInstant } from "@/lib/tasks";
import { PRIORITIES, type Priority, type Reminder, type Task } from "@/lib/types";
import { useTaskSave, type TaskChanges } from "@/hooks/useTaskSave";
import ConflictDialog from "./ConflictDialog";
import RecurrenceBuilder from "./RecurrenceBuilder";
import { useLive } from "./LiveProvider";

interface Form {
  title: string;
  description: string;
  priority: Priority;
  tags: string[];
  date: string;
  time: string;
  tz: string;
  reminders: ReminderRow[];
  recurrence: RecurrenceState;
}

function zones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  return intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : ["UTC"];
}

export function formOf(t: Task | null): Form {
  const tz = t?.tz || browserZone();
  const due = fromInstant(t?.due_at ?? null, tz);
  return {
    title: t?.title ?? "",
    description: t?.description ?? "",
    priority: t?.priority ?? "none",
    tags: t?.tags ?? [],
    date: due.date,
    time: due.time,
    tz,
    reminders: (t?.reminders ?? []).map((r): ReminderRow => {
      if ("before" in r) return { kind: "before", ...durationToOffset(r.before), at: "" };
      const local = fromInstant(r.at, tz);
      return { kind: "at", amount: 15, unit: "minutes", at: local.date ? `${local.date}T${local.time}` : "" };
    }),
    recurrence: parseRule(t?.recurrence?.rule, t?.recurrence?.from),
  };
}

/** The task fields a form stands for (the API's shapes). */
export function fieldsOf(f: Form): TaskChanges {
  const due = toInstant(f.date, f.time, f.tz);
  const reminders: Reminder[] = f.reminders
    .map((r): Reminder | null => {
      if (r.kind === "before") return { before: offsetToDuration(r.amount, r.unit) };
      const [d, t] = r.at.split("T");
      const at = toInstant(d ?? "", t ?? "", f.tz);
      return at ? { at } : null;
    })
    .filter((r): r is Reminder => r !== null);
  const rule = buildRule(f.recurrence);
  return {
    title: f.title.trim(),
    description: f.description.trim() ? f.description : null,
    priority: f.priority,
    tags: f.tags,
    due_at: due || null,
    tz: due ? f.tz : null,
    reminders: reminders.length ? reminders : null,
    recurrence: rule ? { rule, tz: f.tz, from: f.recurrence.fromCompletion ? "completion" : "due" } : null,
  };
}

/** Only what differs from the task (a new task: everything set). */
export function changesOf(task: Task | null, f: Form): TaskChanges {
  const next = fieldsOf(f);
  if (!task) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(next)) if (v !== null && !(Array.isArray(v) && !v.length) && v !== "none") out[k] = v;
    out.title = next.title;
    return out as TaskChanges;
  }
  const before = fieldsOf(formOf(task));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(next) as (keyof TaskChanges)[]) {
    if (JSON.stringify(next[k]) !== JSON.stringify(before[k])) out[k] = next[k];
  }
  return out as TaskChanges;
}

export default function TaskEditor({ initial }: { initial: Task | null }) {
  const router = useRouter();
  const { task, setTask, save, resolve, conflict, saving, error } = useTaskSave(initial);
  const [form, setForm] = useState<Form>(() => formOf(initial));
  const [tagInput, setTagInput] = useState("");
  const [known, setKnown] = useState<string[]>([]);
  const [saved, setSaved] = useState(false);
  const [elsewhere, setElsewhere] = useState<Task | null>(null);
  const allZones = useMemo(zones, []);
  const live = useLive();
  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setSaved(false);
    setForm((f) => ({ ...f, [k]: v }));
  };

  useEffect(() => {
    api<{ items: { tag: string }[] }>("/api/tags")
      .then((r) => setKnown(r.data.items.map((i) => i.tag)))
      .catch(() => {});
  }, []);

  // A newer version arriving live while editing: say so (saving would meet a 412).
  useEffect(
    () =>
      live.subscribe((m) => {
        const t = m.task as Task | undefined;
        if (task && t && t.id === task.id && t.version > task.version) setElsewhere(t);
      }),
    [live, task],
  );

  function addTag(raw: string) {
    const tag = raw.trim().replace(/^#/, "").toLowerCase();
    if (tag && !form.tags.includes(tag)) set("tags", [...form.tags, tag]);
    setTagInput("");
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const changes = changesOf(task, form);
    if (task && Object.keys(changes).length === 0) return setSaved(true);
    const r = await save(changes);
    if (r) {
      setForm(formOf(r));
      setSaved(true);
      setElsewhere(null);
      if (!task) router.replace(`/tasks/${r.id}`);
    }
  }

  async function choose(c: "theirs" | "mine") {
    const r = await resolve(c);
    if (r) {
      setForm(formOf(r));
      setElsewhere(null);
      setSaved(c === "mine");
    }
  }

  async function remove() {
    if (!task || !window.confirm(`Delete "${task.title}"?`)) return;
    await api(`/api/tasks/${task.id}`, { method: "DELETE", ifMatch: task.version });
    router.push("/");
  }

  const reminder = (i: number, patch: Partial<ReminderRow>) =>
    set("reminders", form.reminders.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  return (
    <form className="editor" onSubmit={submit} aria-label={task ? "Edit task" : "New task"}>
      <h1>{task ? "Edit task" : "New task"}</h1>
      {elsewhere && (
        <p role="status" className="notice">
          A newer version ({elsewhere.version}) was saved elsewhere.{" "}
          <button
            type="button"
            onClick={() => {
              setTask(elsewhere);
              setForm(formOf(elsewhere));
              setElsewhere(null);
            }}
          >
            Load it
          </button>
        </p>
      )}
      <label>
        Title
        <input value={form.title} onChange={(e) => set("title", e.target.value)} required maxLength={500} />
      </label>
      <label>
        Description
        <textarea value={form.description} onChange={(e) => set("description", e.target.value)} rows={3} />
      </label>
      <label>
        Priority
        <select aria-label="Priority" value={form.priority} onChange={(e) => set("priority", e.target.value as Priority)}>
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Tags</legend>
        <ul className="chips" aria-label="Tags of this task">
          {form.tags.map((t) => (
            <li key={t}>
              #{t}{" "}
              <button type="button" className="icon" aria-label={`Remove tag ${t}`} onClick={() => set("tags", form.tags.filter((x) => x !== t))}>
                ×
              </button>
            </li>
          ))}
        </ul>
        <label>
          Add a tag
          <input
            list="known-tags"
            value={tagInput}
            onChange={(e) => setTagInput(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" || e.key === ",") {
                e.preventDefault();
                addTag(tagInput);
              }
            }}
            onBlur={() => tagInput && addTag(tagInput)}
          />
        </label>
        <datalist id="known-tags">
          {known.filter((k) => !form.tags.includes(k)).map((k) => (
            <option key={k} value={k} />
          ))}
        </datalist>
      </fieldset>
      <fieldset className="due">
        <legend>Due</legend>
        <label>
          Date
          <input type="date" value={form.date} onChange={(e) => set("date", e.target.value)} />
        </label>
        <label>
          Time
          <input type="time" value={form.time} onChange={(e) => set("time", e.target.value)} />
        </label>
        <label>
          Time zone
          <select aria-label="Time zone" value={form.tz} onChange={(e) => set("tz", e.target.value)}>
            {(allZones.includes(form.tz) ? allZones : [form.tz, ...allZones]).map((z) => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </select>
        </label>
        {form.date && (
          <button type="button" onClick={() => setForm((f) => ({ ...f, date: "", time: "" }))}>
            Clear due date
          </button>
        )}
      </fieldset>
      <fieldset>
        <legend>Reminders</legend>
        <ul className="reminders">
          {form.reminders.map((r, i) => (
            <li key={i}>
              <label>
                Kind
                <select aria-label="Kind" value={r.kind} onChange={(e) => reminder(i, { kind: e.target.value as ReminderRow["kind"] })}>
                  <option value="before">Before due</option>
                  <option value="at">At a time</option>
                </select>
              </label>
              {r.kind === "before" ? (
                <>
                  <label>
                    Amount
                    <input type="number" min={0} className="narrow" value={r.amount} onChange={(e) => reminder(i, { amount: Number(e.target.value) })} />
                  </label>
                  <label>
                    Unit
                    <select aria-label="Unit" value={r.unit} onChange={(e) => reminder(i, { unit: e.target.value as ReminderRow["unit"] })}>
                      <option value="minutes">minutes</option>
                      <option value="hours">hours</option>
                      <option value="days">days</option>
                    </select>
                  </label>
                </>
              ) : (
                <label>
                  At
                  <input type="datetime-local" value={r.at} onChange={(e) => reminder(i, { at: e.target.value })} />
                </label>
              )}
              <button type="button" onClick={() => set("reminders", form.reminders.filter((_, j) => j !== i))}>
                Remove reminder
              </button>
            </li>
          ))}
        </ul>
        <button type="button" onClick={() => set("reminders", [...form.reminders, { kind: "before", amount: 15, unit: "minutes", at: "" }])}>
          Add reminder
        </button>
      </fieldset>
      <RecurrenceBuilder value={form.recurrence} onChange={(s) => set("recurrence", s)} start={toInstant(form.date, form.time, form.tz)} tz={form.tz} />
      {error && (
        <p role="alert" className="error">
          {error.message}
        </p>
      )}
      <div className="row">
        <button type="submit" className="primary" disabled={saving}>
          {saving ? "Saving…" : "Save"}
        </button>
        {saved && (
          <span role="status" className="ok">
            Saved
          </span>
        )}
        {task && (
          <button type="button" className="danger" onClick={remove}>
            Delete
          </button>
        )}
      </div>
      {conflict && <ConflictDialog conflict={conflict} onChoose={choose} />}
    </form>
  );
}

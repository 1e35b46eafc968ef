"use client";
// One line such as "Pay rent every 1st at 9am p1 #home": what the parser understood is
// shown under the field before Enter saves it.
import { useState } from "react";
import { api } from "@/lib/api";
import { browserZone, formatDue } from "@/lib/tasks";
import type { Task } from "@/lib/types";
import { createBody, useQuickAdd } from "@/hooks/useQuickAdd";

export default function QuickAdd({ onCreated }: { onCreated: (t: Task) => void }) {
  const [text, setText] = useState("");
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const zone = browserZone();
  const { preview, parserMissing, error: parseError, pending } = useQuickAdd(text, 300, zone);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!text.trim() || saving) return;
    setSaving(true);
    try {
      const r = await api<Task>("/api/tasks", { method: "POST", body: createBody(preview, text) });
      onCreated(r.data);
      setText("");
      setError(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setSaving(false);
    }
  }

  return (
    <form className="quick-add" onSubmit={submit} aria-label="Quick add">
      <label htmlFor="quick-add-input" className="sr-only">
        Quick add a task
      </label>
      <input
        id="quick-add-input"
        value={text}
        onChange={(e) => setText(e.target.value)}
        placeholder='Quick add: "Pay rent every 1st at 9am p1 #home"'
        aria-describedby="quick-add-preview"
        autoComplete="off"
      />
      <button type="submit" className="primary" disabled={!text.trim() || saving}>
        Add
      </button>
      <div id="quick-add-preview" className="preview" aria-live="polite" data-testid="quick-add-preview">
        {text.trim() && pending && <span className="muted">Reading…</span>}
        {text.trim() && !pending && preview && (
          <dl>
            <dt>Title</dt>
            <dd data-field="title">{preview.title}</dd>
            {preview.due_at && (
              <>
                <dt>Due</dt>
                <dd data-field="due">{formatDue({ due_at: preview.due_at, tz: preview.tz ?? null }, zone)}</dd>
              </>
            )}
            {preview.recurrence && (
              <>
                <dt>Repeats</dt>
                <dd data-field="recurrence">{preview.recurrence.description ?? preview.recurrence.rule}</dd>
              </>
            )}
            {preview.priority && preview.priority !== "none" && (
              <>
                <dt>Priority</dt>
                <dd data-field="priority">{preview.priority}</dd>
              </>
            )}
            {preview.tags && preview.tags.length > 0 && (
              <>
                <dt>Tags</dt>
                <dd data-field="tags">{preview.tags.map((t) => "#" + t).join(" ")}</dd>
              </>
            )}
          </dl>
        )}
        {parserMissing && text.trim() && <span className="muted"> (the phrase parser is not available: saved as the title)</span>}
        {parseError && <span className="error">{parseError}</span>}
        {error && (
          <span role="alert" className="error">
            {error}
          </span>
        )}
      </div>
    </form>
  );
}

"use client";
// A list of history entries (a task's, or the activity of all tasks) with undo
// (POST /api/activity/:id/undo). 412 / 409 answers are shown as the API words them.
import Link from "next/link";
import { useCallback, useEffect, useState } from "react";
import { DateTime } from "luxon";
import { api } from "@/lib/api";
import type { HistoryEntry, Task } from "@/lib/types";
import { useLive } from "./LiveProvider";
import { useToast } from "./Toasts";

export default function HistoryList({ source, showTask, label }: { source: string; showTask: boolean; label: string }) {
  const [items, setItems] = useState<HistoryEntry[]>([]);
  const [error, setError] = useState<string | null>(null);
  const toast = useToast();
  const live = useLive();

  const load = useCallback(async () => {
    try {
      const r = await api<{ items: HistoryEntry[] }>(source);
      setItems(r.data.items);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [source]);

  useEffect(() => {
    void load();
  }, [load]);
  // History entries are written a moment after each change: reload shortly after an event.
  useEffect(
    () =>
      live.subscribe((m) => {
        if (m.type.startsWith("task.")) setTimeout(() => void load(), 300);
      }),
    [live, load],
  );

  async function undo(e: HistoryEntry) {
    try {
      await api<{ undone: number; task: Task | null }>(`/api/activity/${e.id}/undo`, { method: "POST" });
      toast(`Undid: ${e.kind} ${e.task?.title ?? ""}`);
      setTimeout(() => void load(), 300);
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err), "error");
    }
  }

  return (
    <section aria-label={label}>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {items.length === 0 && !error && <p className="muted">No changes yet.</p>}
      <ol className="history">
        {items.map((e) => (
          <li key={e.id} data-testid="history-entry">
            <span className={`kind kind-${e.kind}`}>{e.kind}</span>{" "}
            {showTask && e.task && (e.kind === "deleted" ? <s>{e.task.title}</s> : <Link href={`/tasks/${e.task_id}`}>{e.task.title}</Link>)}
            {e.changed && e.changed.length > 0 && <span className="muted"> ({e.changed.join(", ")})</span>}{" "}
            <time dateTime={e.at} className="muted">
              {DateTime.fromISO(e.at).toRelative() ?? e.at}
            </time>{" "}
            <button type="button" onClick={() => undo(e)} aria-label={`Undo ${e.kind} of ${e.task?.title ?? "task"}`}>
              Undo
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}

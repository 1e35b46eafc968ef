"use client";
// Saving a task with optimistic concurrency: PATCH with If-Match of the version the user
// edited. A 412 means someone changed it meanwhile: the newer version is fetched and shown
// beside the user's changes, and the user chooses: keep theirs (discard mine) or apply mine
// on top of the newer version (PATCH again with its version).
import { useCallback, useState } from "react";
import { api, ApiError } from "@/lib/api";
import type { Task } from "@/lib/types";

export type TaskChanges = Partial<Omit<Task, "id" | "version" | "created_at" | "updated_at" | "completed_at" | "series_id" | "occurrence_index" | "spawned_from">>;

export interface Conflict {
  mine: TaskChanges;
  theirs: Task;
  /** The version the user edited (what both sides changed from). */
  base: Task;
}

export function useTaskSave(initial: Task | null) {
  const [task, setTask] = useState<Task | null>(initial);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<ApiError | Error | null>(null);

  const patch = useCallback(async (base: Task, changes: TaskChanges): Promise<Task | null> => {
    setSaving(true);
    setError(null);
    try {
      const r = await api<Task>(`/api/tasks/${base.id}`, { method: "PATCH", body: changes, ifMatch: base.version });
      setTask(r.data);
      setConflict(null);
      return r.data;
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        const current = await api<Task>(`/api/tasks/${base.id}`);
        setConflict({ mine: changes, theirs: current.data, base });
        return null;
      }
      setError(e as Error);
      return null;
    } finally {
      setSaving(false);
    }
  }, []);

  const save = useCallback(
    async (changes: TaskChanges): Promise<Task | null> => {
      if (task) return patch(task, changes);
      setSaving(true);
      setError(null);
      try {
        const r = await api<Task>("/api/tasks", { method: "POST", body: changes });
        setTask(r.data);
        return r.data;
      } catch (e) {
        setError(e as Error);
        return null;
      } finally {
        setSaving(false);
      }
    },
    [task, patch],
  );

  /** Settle a conflict: "theirs" adopts the newer version, "mine" applies my changes over it. */
  const resolve = useCallback(
    async (choice: "theirs" | "mine"): Promise<Task | null> => {
      if (!conflict) return null;
      if (choice === "theirs") {
        setTask(conflict.theirs);
        setConflict(null);
        return conflict.theirs;
      }
      return patch(conflict.theirs, conflict.mine);
    },
    [conflict, patch],
  );

  return { task, setTask, save, resolve, conflict, saving, error };
}

"use client";
// /tasks/:id: the editor and the task's history.
import { useEffect, useState } from "react";
import { api } from "@/lib/api";
import type { Task } from "@/lib/types";
import HistoryList from "./HistoryList";
import TaskEditor from "./TaskEditor";

export default function TaskPage({ id }: { id: string }) {
  const [task, setTask] = useState<Task | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<Task>(`/api/tasks/${encodeURIComponent(id)}`)
      .then((r) => setTask(r.data))
      .catch((e) => setError(e instanceof Error ? e.message : String(e)));
  }, [id]);
  if (error)
    return (
      <p role="alert" className="error">
        {error}
      </p>
    );
  if (!task) return <p className="muted">Loading…</p>;
  return (
    <>
      <TaskEditor key={task.id} initial={task} />
      <h2>History</h2>
      <HistoryList source={`/api/tasks/${task.id}/history?limit=50`} showTask={false} label="History of this task" />
    </>
  );
}

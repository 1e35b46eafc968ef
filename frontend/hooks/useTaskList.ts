"use client";
// The task list's data: a keyset-paged list for the current filters, kept current by live
// events (task.created / updated / completed / reopened / deleted carry the whole task),
// reloaded through REST when the server asks for a resync.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, toQuery } from "@/lib/api";
import { listQuery, matchesFilters, upsert, type Filters } from "@/lib/tasks";
import type { Task, TaskPage } from "@/lib/types";
import type { LiveMessage } from "@/lib/live";
import { useLive } from "@/components/LiveProvider";

const PAGE = 25;

/** The list after one live message (pure, so it is unit-tested). */
export function applyLiveEvent(list: Task[], msg: LiveMessage, filters: Filters, now = new Date()): Task[] {
  if (!msg.type.startsWith("task.")) return list;
  const task = msg.task as Task | undefined;
  const id = (task?.id ?? msg.task_id ?? msg.id) as string | undefined;
  if (msg.type === "task.deleted") return id ? list.filter((t) => t.id !== id) : list;
  if (!task) return list;
  if (!matchesFilters(task, filters, now)) return list.filter((t) => t.id !== task.id);
  return upsert(list, task);
}

export function useTaskList(filters: Filters) {
  const [items, setItems] = useState<Task[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const live = useLive();
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const generation = useRef(0);

  const load = useCallback(async (more: string | null) => {
    const gen = ++generation.current;
    setLoading(true);
    try {
      const q = { ...listQuery(filtersRef.current), limit: PAGE, cursor: more ?? undefined };
      const r = await api<TaskPage>("/api/tasks" + toQuery(q));
      if (gen !== generation.current) return; // a newer filter replaced this request
      setItems((old) => (more ? [...old, ...r.data.items.filter((t) => !old.some((o) => o.id === t.id))] : r.data.items));
      setCursor(r.data.next_cursor);
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(e instanceof Error ? e.message : "could not load tasks");
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, []);

  const key = JSON.stringify(filters);
  useEffect(() => {
    const t = setTimeout(() => void load(null), filters.q ? 250 : 0);
    return () => clearTimeout(t);
  }, [key, load, filters.q]);

  useEffect(() => live.subscribe((m) => setItems((list) => applyLiveEvent(list, m, filtersRef.current))), [live]);
  useEffect(() => live.onResync(() => void load(null)), [live, load]);

  return {
    items,
    loading,
    error,
    hasMore: cursor !== null,
    loadMore: () => cursor && load(cursor),
    reload: () => load(null),
    /** Show a change made here at once (the live event, when it comes, is the same version). */
    apply: (t: Task) => setItems((list) => (matchesFilters(t, filtersRef.current) ? upsert(list, t) : list.filter((x) => x.id !== t.id))),
    remove: (ids: string[]) => setItems((list) => list.filter((t) => !ids.includes(t.id))),
  };
}

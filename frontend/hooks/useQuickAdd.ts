"use client";
// Quick add: the line typed is parsed by POST /api/parse {"text"} as the user types
// (debounced; stale answers ignored) and the task it would create is shown before saving.
// Where the parser is not served (404), the line becomes the title, and the preview says so.
import { useEffect, useRef, useState } from "react";
import { api, ApiError } from "@/lib/api";
import type { Task } from "@/lib/types";

export type ParsedTask = Partial<Pick<Task, "title" | "description" | "priority" | "tags" | "due_at" | "tz" | "recurrence" | "reminders">>;

export interface QuickAddState {
  preview: ParsedTask | null;
  parserMissing: boolean;
  error: string | null;
  pending: boolean;
}

const CREATE_FIELDS = ["title", "description", "priority", "tags", "due_at", "tz", "recurrence", "reminders"] as const;

/** The POST /api/tasks body for a parsed line: only the fields the API accepts on create. */
export function createBody(parsed: ParsedTask | null, text: string): ParsedTask {
  const body: Record<string, unknown> = {};
  if (parsed) {
    // /api/parse may answer {task: {...}} or the task itself.
    const t = ((parsed as { task?: ParsedTask }).task ?? parsed) as Record<string, unknown>;
    for (const k of CREATE_FIELDS) if (t[k] !== undefined && t[k] !== null) body[k] = t[k];
    if (body.recurrence && typeof body.recurrence === "object") {
      // `description` is output only (the API ignores it; leave it out anyway).
      const rule = { ...(body.recurrence as Record<string, unknown>) };
      delete rule.description;
      body.recurrence = rule;
    }
  }
  if (!body.title) body.title = text.trim();
  return body as ParsedTask;
}

export function useQuickAdd(text: string, delayMs = 300, tz?: string): QuickAddState {
  const [state, setState] = useState<QuickAddState>({ preview: null, parserMissing: false, error: null, pending: false });
  const seq = useRef(0);
  useEffect(() => {
    const line = text.trim();
    const mine = ++seq.current;
    if (!line) {
      setState((s) => ({ ...s, preview: null, error: null, pending: false }));
      return;
    }
    setState((s) => ({ ...s, pending: true }));
    const timer = setTimeout(async () => {
      try {
        const r = await api<ParsedTask | { task: ParsedTask }>("/api/parse", { method: "POST", body: { text: line, tz } });
        if (mine !== seq.current) return;
        const parsed = ((r.data as { task?: ParsedTask }).task ?? r.data) as ParsedTask;
        setState({ preview: parsed, parserMissing: false, error: null, pending: false });
      } catch (e) {
        if (mine !== seq.current) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
          setState({ preview: { title: line }, parserMissing: true, error: null, pending: false });
        } else {
          setState({ preview: null, parserMissing: false, error: e instanceof Error ? e.message : String(e), pending: false });
        }
      }
    }, delayMs);
    return () => clearTimeout(timer);
  }, [text, delayMs, tz]);
  return state;
}

// The shapes the Task API returns (spec/contracts/openapi.yaml) and the ones of the
// parser, chat and notification routes the front end calls.

export type Priority = "none" | "low" | "medium" | "high";
export const PRIORITIES: Priority[] = ["high", "medium", "low", "none"];

export interface Recurrence {
  rule: string;
  tz?: string;
  from?: "due" | "completion";
  description?: string;
}

export type Reminder = { at: string } | { before: string };

export interface Task {
  id: string;
  title: string;
  description: string | null;
  completed: boolean;
  completed_at: string | null;
  priority: Priority;
  tags: string[];
  due_at: string | null;
  tz: string | null;
  recurrence: Recurrence | null;
  reminders: Reminder[] | null;
  created_at: string;
  updated_at: string;
  version: number;
  series_id: string | null;
  occurrence_index: number | null;
  spawned_from: string | null;
}

export interface TaskPage {
  items: Task[];
  next_cursor: string | null;
}

export interface HistoryEntry {
  id: number;
  kind: "created" | "updated" | "completed" | "reopened" | "deleted";
  version: number;
  changed: string[] | null;
  actor: string;
  at: string;
  task_id: string;
  task: Task | null;
  before: Task | null;
}

export interface Notification {
  id: number | string;
  task_id?: string | null;
  title?: string;
  body?: string;
  message?: string;
  created_at?: string;
  read_at?: string | null;
  read?: boolean;
  [k: string]: unknown;
}

export interface ToolCall {
  name: string;
  arguments: unknown;
  result: unknown;
}

export interface ChatReply {
  conversation_id: string;
  response: string;
  tool_calls: ToolCall[];
  tasks: Task[];
}

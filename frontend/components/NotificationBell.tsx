"use client";
// The bell: unread count and the list of notifications (GET /api/notifications,
// /unread-count, /:id/read, /read-all). Reminders arrive live (`reminder.due` on the
// WebSocket) as an in-app toast and, once the user allowed it, a browser notification.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError } from "@/lib/api";
import type { Notification } from "@/lib/types";
import type { LiveMessage } from "@/lib/live";
import { useLive } from "./LiveProvider";
import { useToast } from "./Toasts";

/** The title of the task a `reminder.due` message is about (flat or under data/reminder). */
export function reminderTitle(msg: LiveMessage): string {
  const inner = (msg.reminder ?? msg.data ?? msg.notification ?? msg) as Record<string, unknown>;
  const title = inner.title ?? (inner.task as { title?: string } | undefined)?.title;
  return typeof title === "string" && title ? title : "a task";
}

function notificationText(n: Notification): string {
  return String(n.title ?? n.message ?? n.body ?? "Reminder");
}

export default function NotificationBell() {
  const live = useLive();
  const toast = useToast();
  const [count, setCount] = useState<number | null>(null);
  const [open, setOpen] = useState(false);
  const [items, setItems] = useState<Notification[]>([]);
  const [error, setError] = useState<string | null>(null);
  const panel = useRef<HTMLDivElement>(null);

  const refreshCount = useCallback(async () => {
    try {
      const r = await api<{ count?: number; unread?: number }>("/api/notifications/unread-count");
      setCount(r.data.count ?? r.data.unread ?? 0);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) setCount(null); // not served here
    }
  }, []);

  useEffect(() => {
    void refreshCount();
  }, [refreshCount]);

  useEffect(
    () =>
      live.subscribe((m) => {
        if (m.type === "reminder.due") {
          const title = reminderTitle(m);
          toast(`Reminder: ${title}`, "reminder");
          if (typeof Notification !== "undefined" && Notification.permission === "granted") {
            try {
              new Notification("Reminder", { body: title, tag: String(m.event_id ?? title) });
            } catch {
              /* some browsers only allow notifications from a service worker */
            }
          }
          setCount((c) => (c ?? 0) + 1);
        } else if (m.type === "notification") {
          setCount((c) => (c ?? 0) + 1);
        }
      }),
    [live, toast],
  );

  async function toggle() {
    const next = !open;
    setOpen(next);
    if (!next) return;
    if (typeof Notification !== "undefined" && Notification.permission === "default") {
      void Notification.requestPermission();
    }
    try {
      const r = await api<{ items: Notification[] }>("/api/notifications?limit=20");
      setItems(r.data.items ?? []);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : "could not load notifications");
    }
  }

  async function markRead(n: Notification) {
    await api(`/api/notifications/${encodeURIComponent(String(n.id))}/read`, { method: "POST" });
    setItems((list) => list.map((x) => (x.id === n.id ? { ...x, read: true, read_at: new Date().toISOString() } : x)));
    void refreshCount();
  }

  async function readAll() {
    await api("/api/notifications/read-all", { method: "POST" });
    setItems((list) => list.map((x) => ({ ...x, read: true })));
    setCount(0);
  }

  return (
    <div className="bell" ref={panel}>
      <button
        type="button"
        className="icon"
        aria-expanded={open}
        aria-controls="notification-list"
        aria-label={`Notifications${count ? `, ${count} unread` : ""}`}
        onClick={toggle}
        onKeyDown={(e) => e.key === "Escape" && setOpen(false)}
      >
        <svg aria-hidden="true" width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2">
          <path d="M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        {count ? (
          <span className="badge" data-testid="unread-count">
            {count}
          </span>
        ) : null}
      </button>
      {open && (
        <div id="notification-list" className="popover" role="region" aria-label="Notification list">
          <div className="row">
            <strong>Notifications</strong>
            <button type="button" onClick={readAll}>
              Mark all read
            </button>
          </div>
          {error && <p className="error">{error}</p>}
          {items.length === 0 && !error && <p className="muted">Nothing yet.</p>}
          <ul>
            {items.map((n) => {
              const unread = !(n.read || n.read_at);
              return (
                <li key={String(n.id)} className={unread ? "unread" : ""}>
                  <span>{notificationText(n)}</span>
                  {unread && (
                    <button type="button" onClick={() => markRead(n)}>
                      Mark read
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        </div>
      )}
    </div>
  );
}

"use client";
// Owns the one LiveSync connection of the page and hands its events to whoever listens
// (the task list, the notification bell, the toasts) and its status to the indicator.
import { createContext, useContext, useEffect, useMemo, useRef, useState } from "react";
import { LiveSync, type LiveMessage, type LiveStatus } from "@/lib/live";
import { tokens } from "@/lib/token";

type Listener = (msg: LiveMessage) => void;

interface LiveContextValue {
  status: LiveStatus;
  subscribe(fn: Listener): () => void;
  /** Called when the server cannot replay the gap: listeners reload through REST. */
  onResync(fn: () => void): () => void;
}

const LiveContext = createContext<LiveContextValue>({
  status: "offline",
  subscribe: () => () => {},
  onResync: () => () => {},
});

export function useLive() {
  return useContext(LiveContext);
}

/** ws(s)://<this host>:8080/ws unless the server configured TODO_WS_URL. */
export function defaultWsUrl(configured: string): string {
  if (configured) return configured;
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.hostname}:8080/ws`;
}

export default function LiveProvider({ wsUrl, children }: { wsUrl: string; children: React.ReactNode }) {
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const listeners = useRef(new Set<Listener>());
  const resyncers = useRef(new Set<() => void>());

  useEffect(() => {
    const sync = new LiveSync({
      url: defaultWsUrl(wsUrl),
      token: (force) => tokens.get(force),
      onEvent: (m) => listeners.current.forEach((fn) => fn(m)),
      onStatus: setStatus,
      onResync: () => resyncers.current.forEach((fn) => fn()),
    });
    sync.start();
    const online = () => sync.kick();
    window.addEventListener("online", online);
    return () => {
      window.removeEventListener("online", online);
      sync.stop();
    };
  }, [wsUrl]);

  const value = useMemo<LiveContextValue>(
    () => ({
      status,
      subscribe(fn) {
        listeners.current.add(fn);
        return () => listeners.current.delete(fn);
      },
      onResync(fn) {
        resyncers.current.add(fn);
        return () => resyncers.current.delete(fn);
      },
    }),
    [status],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

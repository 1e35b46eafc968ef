"use client";
// In-app toasts: short messages in a polite live region, dismissed after a while or by hand.
import { createContext, useCallback, useContext, useMemo, useState } from "react";

interface Toast {
  id: number;
  text: string;
  kind: "info" | "reminder" | "error";
}

const ToastContext = createContext<(text: string, kind?: Toast["kind"]) => void>(() => {});

export function useToast() {
  return useContext(ToastContext);
}

let nextId = 1;

export default function Toasts({ children }: { children: React.ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const show = useCallback(
    (text: string, kind: Toast["kind"] = "info") => {
      const id = nextId++;
      setToasts((t) => [...t.slice(-4), { id, text, kind }]);
      setTimeout(() => dismiss(id), kind === "reminder" ? 15000 : 6000);
    },
    [dismiss],
  );
  const value = useMemo(() => show, [show]);
  return (
    <ToastContext.Provider value={value}>
      {children}
      <div className="toasts" role="region" aria-label="Notifications" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} data-testid="toast">
            <span>{t.text}</span>
            <button type="button" className="icon" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

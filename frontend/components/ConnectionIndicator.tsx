"use client";
// Shows whether live updates are flowing (the WebSocket is open) or not.
import { useLive } from "./LiveProvider";

const LABEL = { live: "Live", connecting: "Connecting…", offline: "Offline" } as const;

export default function ConnectionIndicator() {
  const { status } = useLive();
  return (
    <span className={`conn conn-${status}`} role="status" aria-live="polite" data-testid="connection" data-status={status}>
      <span className="dot" aria-hidden="true" />
      {LABEL[status]}
    </span>
  );
}

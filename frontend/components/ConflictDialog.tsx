"use client";
// Shown when a save answered 412: the newer version beside the user's changes, and the
// choice of which wins. A modal dialog (focus moves into it; Escape keeps theirs).
import { useEffect, useRef } from "react";
import type { Conflict } from "@/hooks/useTaskSave";
import type { Task } from "@/lib/types";

function show(v: unknown): string {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", ") || "—";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export default function ConflictDialog({ conflict, onChoose }: { conflict: Conflict; onChoose: (c: "theirs" | "mine") => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d || d.open) return;
    if (typeof d.showModal === "function") d.showModal();
    else d.setAttribute("open", ""); // environments without showModal
  }, []);
  // What I changed, and what the newer version changed since the one I edited.
  const editable: (keyof Task)[] = ["title", "description", "priority", "tags", "due_at", "tz", "recurrence", "reminders", "completed"];
  const theirsChanged = editable.filter((k) => JSON.stringify(conflict.base[k]) !== JSON.stringify(conflict.theirs[k]));
  const fields = [...new Set([...(Object.keys(conflict.mine) as (keyof Task)[]), ...theirsChanged])];
  return (
    <dialog ref={ref} className="conflict" aria-labelledby="conflict-title" onCancel={(e) => (e.preventDefault(), onChoose("theirs"))}>
      <h2 id="conflict-title">This task was changed elsewhere</h2>
      <p>
        Someone (or another device) saved version {conflict.theirs.version} while you were editing. Choose which version to keep.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Newer version</th>
            <th scope="col">Your change</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f}>
              <th scope="row">{f}</th>
              <td data-testid={`theirs-${f}`}>{show(conflict.theirs[f])}</td>
              <td data-testid={`mine-${f}`}>
                {f in conflict.mine ? show(conflict.mine[f as keyof typeof conflict.mine]) : <span className="muted">(not changed by you)</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row">
        <button type="button" onClick={() => onChoose("theirs")}>
          Keep the newer version
        </button>
        <button type="button" className="primary" onClick={() => onChoose("mine")}>
          Apply my changes over it
        </button>
      </div>
    </dialog>
  );
}

// The 412 flow of the editor: a save that meets a newer version shows it beside the
// user's change; "apply mine" saves again over the newer version, "keep theirs" adopts it.
import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import TaskEditor from "@/components/TaskEditor";
import type { Task } from "@/lib/types";
import { installFetch, json } from "./fake-fetch";

vi.mock("next/navigation", () => ({ useRouter: () => ({ replace: vi.fn(), push: vi.fn() }) }));

const base: Task = {
  id: "11111111-1111-4111-8111-111111111111",
  title: "Dentist",
  description: null,
  completed: false,
  completed_at: null,
  priority: "none",
  tags: [],
  due_at: null,
  tz: null,
  recurrence: null,
  reminders: null,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  version: 1,
  series_id: null,
  occurrence_index: 1,
  spawned_from: null,
};
const theirs: Task = { ...base, title: "Dentist at 3", priority: "high", version: 2 };

function server() {
  let current = theirs;
  const calls = installFetch({
    "GET /api/tags": () => json(200, { items: [] }),
    [`GET /api/tasks/${base.id}`]: () => json(200, current, { etag: `"${current.version}"` }),
    [`PATCH /api/tasks/${base.id}`]: (c) => {
      if (c.headers["if-match"] !== `"${current.version}"`)
        return json(412, { error: { code: "version_conflict", message: "changed", field: "If-Match" } });
      current = { ...current, ...(c.body as object), version: current.version + 1 };
      return json(200, current);
    },
  });
  return calls;
}

async function editTitleAndSave(title: string) {
  fireEvent.change(screen.getByLabelText("Title"), { target: { value: title } });
  fireEvent.click(screen.getByRole("button", { name: "Save" }));
  return screen.findByRole("dialog", { name: "This task was changed elsewhere" });
}

describe("TaskEditor conflict (412)", () => {
  it("shows the newer version beside my change, then applies mine over it", async () => {
    const calls = server();
    render(<TaskEditor initial={base} />);
    await editTitleAndSave("Dentist (bring form)");
    expect(screen.getByTestId("theirs-title").textContent).toBe("Dentist at 3");
    expect(screen.getByTestId("mine-title").textContent).toBe("Dentist (bring form)");
    // What the newer version changed besides: shown too, marked as not mine.
    expect(screen.getByTestId("theirs-priority").textContent).toBe("high");
    expect(screen.getByTestId("mine-priority").textContent).toBe("(not changed by you)");
    const patches = () => calls.filter((c) => c.method === "PATCH");
    expect(patches()).toHaveLength(1);
    expect(patches()[0].body).toEqual({ title: "Dentist (bring form)" }); // only what I changed
    fireEvent.click(screen.getByRole("button", { name: "Apply my changes over it" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(patches()).toHaveLength(2);
    expect(patches()[1].headers["if-match"]).toBe('"2"');
    expect(patches()[1].body).toEqual({ title: "Dentist (bring form)" });
    // Their priority stays: my change did not touch it.
    expect((screen.getByLabelText("Priority") as HTMLSelectElement).value).toBe("high");
    expect((screen.getByLabelText("Title") as HTMLInputElement).value).toBe("Dentist (bring form)");
  });

  it("keeps the newer version when I choose so, without saving", async () => {
    const calls = server();
    render(<TaskEditor initial={base} />);
    await editTitleAndSave("Mine");
    fireEvent.click(screen.getByRole("button", { name: "Keep the newer version" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(1);
    expect((screen.getByLabelText("Title") as HTMLInputElement).value).toBe("Dentist at 3");
    // A later save goes with the version now shown.
    fireEvent.change(screen.getByLabelText("Title"), { target: { value: "Later edit" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(2));
    expect(calls.filter((c) => c.method === "PATCH")[1].headers["if-match"]).toBe('"2"');
  });
});

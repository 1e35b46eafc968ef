// Quick add: the preview of what /api/parse understood, stale answers ignored, the saved
// body, and the fallback when no parser is served.
import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import QuickAdd from "@/components/QuickAdd";
import { createBody } from "@/hooks/useQuickAdd";
import { installFetch, json } from "./fake-fetch";

const parsed = {
  title: "Pay rent",
  priority: "high",
  tags: ["home"],
  due_at: "2027-01-01T08:00:00Z",
  tz: "UTC",
  recurrence: { rule: "FREQ=MONTHLY;BYMONTHDAY=1", tz: "UTC", description: "every month on the 1st" },
};

describe("QuickAdd", () => {
  it("shows what the parser understood, then saves exactly that", async () => {
    const created = vi.fn();
    const calls = installFetch({
      "POST /api/parse": () => json(200, parsed),
      "POST /api/tasks": (c) => json(201, { id: "t1", version: 1, completed: false, ...(c.body as object) }),
    });
    render(<QuickAdd onCreated={created} />);
    const input = screen.getByLabelText("Quick add a task");
    fireEvent.change(input, { target: { value: "Pay rent every 1st at 9am p1 #home" } });
    const preview = screen.getByTestId("quick-add-preview");
    await waitFor(() => expect(preview.querySelector('[data-field="recurrence"]')?.textContent).toBe("every month on the 1st"));
    expect(preview.querySelector('[data-field="title"]')?.textContent).toBe("Pay rent");
    expect(preview.querySelector('[data-field="priority"]')?.textContent).toBe("high");
    expect(preview.querySelector('[data-field="tags"]')?.textContent).toBe("#home");
    expect(calls[0].body).toMatchObject({ text: "Pay rent every 1st at 9am p1 #home" });
    fireEvent.submit(input.closest("form")!);
    await waitFor(() => expect(created).toHaveBeenCalled());
    const post = calls.find((c) => c.method === "POST" && c.path === "/api/tasks")!;
    expect(post.body).toEqual({
      title: "Pay rent",
      priority: "high",
      tags: ["home"],
      due_at: "2027-01-01T08:00:00Z",
      tz: "UTC",
      recurrence: { rule: "FREQ=MONTHLY;BYMONTHDAY=1", tz: "UTC" },
    });
    expect((input as HTMLInputElement).value).toBe("");
  });

  it("ignores a slow answer to an older line", async () => {
    let release: (r: Response) => void = () => {};
    installFetch({
      "POST /api/parse": (c) => {
        const text = (c.body as { text: string }).text;
        if (text === "first") return new Promise<Response>((r) => (release = r));
        return json(200, { title: "second parsed" });
      },
    });
    render(<QuickAdd onCreated={() => {}} />);
    const input = screen.getByLabelText("Quick add a task");
    fireEvent.change(input, { target: { value: "first" } });
    await waitFor(() => expect(globalThis.fetch).toHaveBeenCalled(), { timeout: 1000 });
    await new Promise((r) => setTimeout(r, 350));
    fireEvent.change(input, { target: { value: "second" } });
    const preview = screen.getByTestId("quick-add-preview");
    await waitFor(() => expect(preview.querySelector('[data-field="title"]')?.textContent).toBe("second parsed"));
    release(json(200, { title: "first parsed" }));
    await new Promise((r) => setTimeout(r, 20));
    expect(preview.querySelector('[data-field="title"]')?.textContent).toBe("second parsed");
  });

  it("saves the line as the title when no parser is served", async () => {
    const calls = installFetch({
      "POST /api/tasks": (c) => json(201, { id: "t2", version: 1, ...(c.body as object) }),
    });
    render(<QuickAdd onCreated={() => {}} />);
    const input = screen.getByLabelText("Quick add a task");
    fireEvent.change(input, { target: { value: "  Water the plants " } });
    await waitFor(() => expect(screen.getByText(/parser is not available/)).toBeTruthy());
    fireEvent.submit(input.closest("form")!);
    await waitFor(() => expect(calls.some((c) => c.path === "/api/tasks")).toBe(true));
    expect(calls.find((c) => c.path === "/api/tasks")!.body).toEqual({ title: "Water the plants" });
  });
});

describe("createBody", () => {
  it("keeps only the fields the API accepts on create", () => {
    expect(createBody({ task: { title: "x", priority: "low" }, confidence: 0.9 } as never, "x y")).toEqual({ title: "x", priority: "low" });
    expect(createBody(null, " typed ")).toEqual({ title: "typed" });
  });
});

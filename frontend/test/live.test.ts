// The WebSocket resume logic (lib/live.ts) against a fake socket and fake timers.
import { describe, expect, it } from "vitest";
import { compareIds, LiveSync, type LiveMessage, type WebSocketLike } from "@/lib/live";

class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: string[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(
    public url: string,
    public protocols: string[],
  ) {}
  send(d: string) {
    this.sent.push(d);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const events: LiveMessage[] = [];
  const statuses: string[] = [];
  const tokenCalls: boolean[] = [];
  let resyncs = 0;
  const sync = new LiveSync({
    url: "ws://api.test/ws",
    token: async (force) => {
      tokenCalls.push(force);
      return `tok${tokenCalls.length}`;
    },
    onEvent: (m) => events.push(m),
    onStatus: (s) => statuses.push(s),
    onResync: () => resyncs++,
    createSocket: (url, protocols) => {
      const s = new FakeSocket(url, protocols);
      sockets.push(s);
      return s;
    },
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
    random: () => 0.5,
  });
  const flush = () => new Promise((r) => setTimeout(r, 0));
  const fireTimer = async () => {
    const t = timers.shift();
    t?.fn();
    await flush();
  };
  return { sync, sockets, timers, events, statuses, tokenCalls, resyncs: () => resyncs, flush, fireTimer };
}

describe("LiveSync", () => {
  it("authenticates with the bearer sub-protocol", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    expect(h.sockets[0].url).toBe("ws://api.test/ws");
    expect(h.sockets[0].protocols).toEqual(["todo.v1", "bearer.tok1"]);
    h.sockets[0].open();
    expect(h.sync.status).toBe("live");
    h.sockets[0].receive({ type: "hello", user: "u1", event_id: 0, resume_window_seconds: 604800 });
    // The first message starts live events; there is nothing to replay yet.
    expect(h.sockets[0].sent.map((m) => JSON.parse(m))).toEqual([{ type: "resume", after: 0 }]);
    expect(h.resyncs()).toBe(1); // the first hello: load the list through REST now
  });

  it("resumes after a reconnect from the last event applied, and drops duplicates", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    const s1 = h.sockets[0];
    s1.open();
    s1.receive({ type: "hello", user: "u1", event_id: 10 });
    s1.receive({ type: "task.created", event_id: 11, task: { id: "a" } });
    s1.receive({ type: "task.updated", event_id: 12, task: { id: "a" } });
    s1.drop();
    expect(h.sync.status).toBe("offline");
    expect(h.timers[0].ms).toBe(500); // first retry after half a second
    await h.fireTimer();
    const s2 = h.sockets[1];
    s2.open();
    expect(s2.sent).toEqual([]); // the resume goes right after hello
    s2.receive({ type: "hello", user: "u1", event_id: 13 });
    expect(s2.sent.map((m) => JSON.parse(m))).toEqual([{ type: "resume", after: 12 }]);
    expect(h.resyncs()).toBe(1); // a resume, not a reload
    // The replay repeats 12 (already applied), then brings 13.
    s2.receive({ type: "task.updated", event_id: 12, task: { id: "a" } });
    s2.receive({ type: "task.deleted", event_id: 13, task_id: "a" });
    s2.receive({ type: "resumed", event_id: 13 });
    expect(h.events.filter((e) => e.type.startsWith("task.")).map((e) => e.event_id)).toEqual([11, 12, 13]);
    expect(h.sync.lastEventId).toBe(13);
  });

  it("backs off longer after each failed attempt and resets once connected", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    h.sockets[0].drop();
    await h.fireTimer();
    h.sockets[1].drop();
    await h.fireTimer();
    h.sockets[2].drop();
    expect(h.timers[0].ms).toBe(2000);
    await h.fireTimer();
    h.sockets[3].open();
    h.sockets[3].drop();
    expect(h.timers[0].ms).toBe(500);
  });

  it("asks for a fresh token after a refused handshake", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    h.sockets[0].drop(1006); // closed before open: the handshake was refused
    await h.fireTimer();
    expect(h.tokenCalls).toEqual([false, true]);
    expect(h.sockets[1].protocols).toEqual(["todo.v1", "bearer.tok2"]);
  });

  it("hands a resync to the app (reload through REST)", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    h.sockets[0].open();
    h.sockets[0].receive({ type: "hello", event_id: 5 });
    h.sockets[0].receive({ type: "resync", event_id: 900, reason: "outside the window" });
    expect(h.resyncs()).toBe(2); // the first hello, then the resync
    h.sockets[0].receive({ type: "task.created", event_id: 901, task: { id: "b" } });
    expect(h.events.at(-1)?.event_id).toBe(901);
  });

  it("stops for good: no reconnect after stop", async () => {
    const h = harness();
    h.sync.start();
    await h.flush();
    h.sockets[0].open();
    h.sync.stop();
    h.sockets[0].drop();
    expect(h.timers).toEqual([]);
  });
});

describe("compareIds", () => {
  it("orders decimal ids beyond 2^53 by value", () => {
    expect(compareIds("9007199254740993", "9007199254740992")).toBeGreaterThan(0);
    expect(compareIds("10", "9")).toBeGreaterThan(0);
    expect(compareIds(7, 7)).toBe(0);
  });
});

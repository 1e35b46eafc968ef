// The live connection to /ws (protocol: spec/contracts/websocket.md, sub-protocol
// `todo.v1`): authenticated with the `bearer.<token>` sub-protocol (browsers cannot set
// headers on a WebSocket). The first `hello` of the page asks the app to load through
// REST (events before it are in that answer) and gives the first resume point; after
// every reconnect the client sends {"type":"resume","after":<last event id>} right after
// `hello`, so the list is current with no reload; events at or below the last id are
// duplicates and dropped; `resync` (the gap is outside the window) reloads through REST.
// No React here: LiveSync is driven by a WebSocket constructor and timers it is given,
// so the resume logic is unit-tested with a fake socket.

export type LiveStatus = "connecting" | "live" | "offline";

export interface LiveMessage {
  type: string;
  event_id?: number | string;
  [k: string]: unknown;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveOptions {
  url: string;
  token: (force: boolean) => Promise<string>;
  onEvent: (msg: LiveMessage) => void;
  onStatus?: (s: LiveStatus) => void;
  onResync?: () => void;
  createSocket?: (url: string, protocols: string[]) => WebSocketLike;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  random?: () => number;
}

/** Compare event ids that may be numbers or decimal strings (beyond 2^53). */
export function compareIds(a: number | string, b: number | string): number {
  const sa = String(a);
  const sb = String(b);
  if (/^\d+$/.test(sa) && /^\d+$/.test(sb)) {
    if (sa.length !== sb.length) return sa.length - sb.length;
  }
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];

export class LiveSync {
  private socket: WebSocketLike | null = null;
  private lastId: number | string | null = null;
  private attempt = 0;
  private timer: unknown = null;
  private stopped = false;
  private refusedOnce = false;
  status: LiveStatus = "offline";

  constructor(private o: LiveOptions) {}

  /** The last event id applied (the resume point). */
  get lastEventId() {
    return this.lastId;
  }

  start() {
    this.stopped = false;
    void this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) (this.o.clearTimer ?? clearTimeout)(this.timer as ReturnType<typeof setTimeout>);
    this.timer = null;
    this.socket?.close(1000, "bye");
    this.socket = null;
    this.setStatus("offline");
  }

  /** Reconnect now (e.g. the browser came back online). */
  kick() {
    if (this.stopped || this.status === "live") return;
    if (this.timer !== null) (this.o.clearTimer ?? clearTimeout)(this.timer as ReturnType<typeof setTimeout>);
    this.timer = null;
    this.attempt = 0;
    void this.connect();
  }

  send(msg: object) {
    if (this.socket && this.status === "live") this.socket.send(JSON.stringify(msg));
  }

  private setStatus(s: LiveStatus) {
    if (this.status === s) return;
    this.status = s;
    this.o.onStatus?.(s);
  }

  private async connect() {
    if (this.stopped) return;
    this.setStatus("connecting");
    let token: string;
    try {
      token = await this.o.token(this.refusedOnce);
    } catch {
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    const create =
      this.o.createSocket ?? ((url: string, protocols: string[]) => new WebSocket(url, protocols) as unknown as WebSocketLike);
    let ws: WebSocketLike;
    try {
      ws = create(this.o.url, ["todo.v1", `bearer.${token}`]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.refusedOnce = false;
      this.setStatus("live");
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.socket = null;
      // A handshake refused (401) shows as a close before open: next time, a fresh token.
      if (this.status !== "live" || ev.code === 1008 || ev.code === 4401) this.refusedOnce = true;
      this.setStatus("offline");
      this.scheduleReconnect();
    };
  }

  private receive(data: unknown) {
    let msg: LiveMessage;
    try {
      msg = JSON.parse(String(data));
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "hello") {
      if (this.lastId === null) {
        // The first connection: the REST list loaded from now on holds every event up to
        // hello's; live events continue from there.
        this.lastId = (msg.event_id ?? 0) as number | string;
        this.o.onResync?.();
      }
      // Right after hello: replay what was missed (nothing, the first time). Being the
      // client's first message, it also starts live events at once (the server holds
      // them for a second after hello otherwise).
      this.socket?.send(JSON.stringify({ type: "resume", after: this.lastId }));
      this.o.onEvent(msg);
      return;
    }
    if (msg.type === "resync") {
      this.lastId = (msg.event_id ?? this.lastId) as number | string | null;
      this.o.onResync?.();
      return;
    }
    if (msg.event_id !== undefined && msg.event_id !== null) {
      if (this.lastId !== null && compareIds(msg.event_id, this.lastId) <= 0) return; // already applied
      this.lastId = msg.event_id;
    }
    this.o.onEvent(msg);
  }

  private scheduleReconnect() {
    if (this.stopped || this.timer !== null) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    const delay = Math.round(base * (0.75 + 0.5 * (this.o.random ?? Math.random)()));
    this.timer = (this.o.setTimer ?? setTimeout)(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}

// The API token of the signed-in user: a short-lived JWT from Better Auth's /api/auth/token
// (its JWT plugin), kept in memory until a minute before it expires and fetched once for
// concurrent callers. A 401 from /api/auth/token means the session is gone: the caller is
// sent to sign-in (SessionExpiredError).

export class SessionExpiredError extends Error {
  constructor() {
    super("your session has expired; please sign in again");
    this.name = "SessionExpiredError";
  }
}

/** The `exp` claim of a compact JWT, in milliseconds, or 0 when unreadable. */
export function tokenExpiry(token: string): number {
  const part = token.split(".")[1];
  if (!part) return 0;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

const MARGIN_MS = 60_000;

export interface TokenSource {
  /** A valid token; `force` skips the cached one (after the API refused it). */
  get(force?: boolean): Promise<string>;
  clear(): void;
}

export function createTokenSource(fetcher: typeof fetch = (...a) => fetch(...a), now = () => Date.now()): TokenSource {
  let token: string | null = null;
  let expiresAt = 0;
  let inflight: Promise<string> | null = null;

  async function load(): Promise<string> {
    const res = await fetcher("/api/auth/token", { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401) throw new SessionExpiredError();
    if (!res.ok) throw new Error(`could not get an API token (HTTP ${res.status})`);
    const body = (await res.json()) as { token?: string };
    if (!body.token) throw new SessionExpiredError();
    token = body.token;
    expiresAt = tokenExpiry(body.token);
    return body.token;
  }

  return {
    get(force = false) {
      if (!force && token && expiresAt - MARGIN_MS > now()) return Promise.resolve(token);
      inflight ??= load().finally(() => {
        inflight = null;
      });
      return inflight;
    },
    clear() {
      token = null;
      expiresAt = 0;
    },
  };
}

export const tokens = createTokenSource();

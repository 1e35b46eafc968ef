// The Task API client: JSON over the same-origin proxy (/api/*), the bearer token from
// lib/token.ts, one error type carrying the API's error shape. A 401 is retried once with
// a fresh token; a second 401, or no session at all, raises SessionExpiredError, which
// the app turns into a redirect to sign-in.
import { SessionExpiredError, tokens, type TokenSource } from "./token";

export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ApiResponse<T> {
  status: number;
  data: T;
  etag: string | null;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  ifMatch?: number | string;
  signal?: AbortSignal;
}

export type Query = Record<string, string | number | boolean | string[] | undefined | null>;

/** `?a=1&b=x,y` from an object; empty values are left out, arrays are comma lists. */
export function toQuery(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) {
      if (v.length) p.set(k, v.join(","));
    } else p.set(k, String(v));
  }
  const s = p.toString();
  return s ? "?" + s : "";
}

let onSessionExpired: () => void = () => {};
/** Called once the session is gone (the app redirects to sign-in). */
export function setSessionExpiredHandler(fn: () => void) {
  onSessionExpired = fn;
}

export function createApi(source: TokenSource, fetcher: typeof fetch = (...a) => fetch(...a)) {
  async function send(path: string, opts: RequestOptions, token: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    if (opts.ifMatch !== undefined) headers["if-match"] = `"${opts.ifMatch}"`;
    return fetcher(path, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      cache: "no-store",
    });
  }

  return async function request<T>(path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    let res: Response;
    try {
      res = await send(path, opts, await source.get());
      if (res.status === 401) res = await send(path, opts, await source.get(true));
      if (res.status === 401) throw new SessionExpiredError();
    } catch (e) {
      if (e instanceof SessionExpiredError) onSessionExpired();
      throw e;
    }
    const etag = res.headers.get("etag");
    if (res.status === 204) return { status: 204, data: undefined as T, etag };
    const text = await res.text();
    let data: unknown = undefined;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!res.ok) {
      const err = (data as { error?: ApiErrorBody } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? "http_" + res.status, err?.message ?? `HTTP ${res.status}`, err?.field);
    }
    return { status: res.status, data: data as T, etag };
  };
}

export const api = createApi(tokens);

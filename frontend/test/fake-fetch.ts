// A stand-in for the network in unit tests: routes requests to handlers by method and
// path, answers /api/auth/token with a JWT that expires in an hour, records every call.
import { vi } from "vitest";

export interface Call {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

type Handler = (call: Call) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function fakeToken(expSeconds = Math.floor(Date.now() / 1000) + 3600): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "EdDSA" })}.${b64({ sub: "u1", exp: expSeconds })}.sig`;
}

export function installFetch(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), "http://app.test");
    const method = (init.method ?? "GET").toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    const call = { method, path: url.pathname + url.search, body, headers };
    if (url.pathname === "/api/auth/token") return json(200, { token: fakeToken() });
    calls.push(call);
    const key = `${method} ${url.pathname}`;
    const h = routes[key] ?? routes[`${method} ${url.pathname}${url.search}`];
    if (!h) return json(404, { error: { code: "not_found", message: `no route ${key}` } });
    return h(call);
  });
  globalThis.fetch = fn as unknown as typeof fetch;
  return calls;
}

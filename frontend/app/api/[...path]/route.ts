// The same-origin proxy: every /api/* request that is not Better Auth's (a more specific
// route) goes to the todo-host API at TODO_API_URL, read at run time so one build serves
// any deployment. The browser never needs CORS; the session cookie is not forwarded (the
// API authenticates the bearer JWT only).
import type { NextRequest } from "next/server";

export const dynamic = "force-dynamic";

const FORWARD_REQUEST = ["authorization", "content-type", "if-match", "if-none-match", "accept", "x-request-id"];
const FORWARD_RESPONSE = [
  "content-type", "etag", "location", "www-authenticate", "retry-after", "x-request-id", "allow", "cache-control",
];

function apiOrigin(): string {
  return (process.env.TODO_API_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
}

async function proxy(req: NextRequest): Promise<Response> {
  const target = apiOrigin() + req.nextUrl.pathname + req.nextUrl.search;
  const headers = new Headers();
  for (const name of FORWARD_REQUEST) {
    const v = req.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? await req.arrayBuffer() : undefined,
      redirect: "manual",
      cache: "no-store",
    });
  } catch {
    return Response.json(
      { error: { code: "unavailable", message: "the task API cannot be reached right now" } },
      { status: 503, headers: { "retry-after": "1" } },
    );
  }
  const out = new Headers();
  for (const name of FORWARD_RESPONSE) {
    const v = upstream.headers.get(name);
    if (v !== null) out.set(name, v);
  }
  const body = upstream.status === 204 || upstream.status === 304 ? null : await upstream.arrayBuffer();
  return new Response(body, { status: upstream.status, headers: out });
}

export const GET = proxy;
export const POST = proxy;
export const PATCH = proxy;
export const PUT = proxy;
export const DELETE = proxy;

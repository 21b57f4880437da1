// Talks to the gateway: the console session (/admin/session) and the admin API (/api/admin).
// The admin key is sent once, to sign in; the browser keeps only the HttpOnly cookie (which
// scripts cannot read) and this session's CSRF token, in memory.

let csrf = "";

export interface SessionState {
  enabled: boolean;
  signedIn: boolean;
  csrfToken?: string;
  expiresAt?: string;
}

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function parse(r: Response): Promise<any> {
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    const msg = body && typeof body === "object" && body.error ? body.error.message : `HTTP ${r.status}`;
    if (r.status === 401) onSignedOut();
    throw new ApiError(r.status, msg);
  }
  return body;
}

let onSignedOut = () => {};
export function whenSignedOut(f: () => void) {
  onSignedOut = f;
}

export async function session(): Promise<SessionState> {
  const s: SessionState = await parse(await fetch("/admin/session", { credentials: "same-origin" }));
  csrf = s.csrfToken || "";
  return s;
}

export async function signIn(key: string): Promise<SessionState> {
  const r = await fetch("/admin/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key }),
  });
  const s: SessionState = await parse(r);
  csrf = s.csrfToken || "";
  return s;
}

export async function signOut(): Promise<void> {
  await fetch("/admin/session", { method: "DELETE", credentials: "same-origin", headers: { "x-csrf-token": csrf } });
  csrf = "";
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { "x-csrf-token": csrf, ...extra };
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", headers: headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  return parse(await fetch("/api/admin" + path, init));
}

export const get = <T = any>(p: string) => api<T>("GET", p);
export const post = <T = any>(p: string, b?: unknown) => api<T>("POST", p, b ?? {});
export const put = <T = any>(p: string, b: unknown) => api<T>("PUT", p, b);
export const patch = <T = any>(p: string, b: unknown) => api<T>("PATCH", p, b);
export const del = <T = any>(p: string) => api<T>("DELETE", p);

/** A playground request through the console's session (/admin/try/…), answered as a raw Response. */
export function tryRequest(path: string, body: unknown): Promise<Response> {
  return fetch("/admin/try" + path, {
    method: "POST",
    credentials: "same-origin",
    headers: headers({ "content-type": "application/json" }),
    body: JSON.stringify(body),
  });
}

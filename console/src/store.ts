// A tiny shared store: the credentials (kept current by the event stream), the live request log,
// and the connection state. Components subscribe with useStore and re-render only on change.
import { useEffect, useState } from "preact/hooks";

export interface Credential {
  id: number | string;
  name: string | null;
  priority: number;
  disabled: boolean;
  disabledReason: string | null;
  status: string;
  reason: string | null;
  authMethod: string;
  email: string | null;
  subscriptionTitle: string | null;
  region: string;
  expiresAt: string | null;
  successCount: number;
  failureCount: number;
  refreshFailureCount: number;
  inFlight: number;
  lastUsedAt: string | null;
  cooldownUntil: string | null;
  exhaustedUntil: string | null;
  unhealthyUntil: string | null;
  hasProfileArn: boolean;
  hasProxy: boolean;
  proxyUrl: string | null;
  refreshTokenHash: string | null;
  isCurrent: boolean;
}

export interface LogEntry {
  id: string;
  time: number;
  at: string;
  dialect: string;
  userAgent: string | null;
  key: string | null;
  model: string | null;
  kiroModel: string | null;
  credential: string | null;
  status: number;
  retries: number;
  ttfbMs: number | null;
  totalMs: number;
  tokensIn: number;
  tokensOut: number;
  credits: number | null;
  stream: boolean;
  error: string | null;
  errorMessage: string | null;
  isError: boolean;
  requestBody?: unknown;
  responseBody?: unknown;
}

type State = {
  creds: Map<string, Credential>;
  version: number; // bumped on every credential change
  live: LogEntry[]; // newest first, bounded
  connected: boolean;
  everConnected: boolean;
};

export const state: State = { creds: new Map(), version: 0, live: [], connected: false, everConnected: false };
const listeners = new Set<() => void>();

export function changed() {
  listeners.forEach((f) => f());
}

export function useStore<T>(pick: (s: State) => T): T {
  const [, force] = useState(0);
  useEffect(() => {
    let last = pick(state);
    const f = () => {
      const next = pick(state);
      if (next !== last) {
        last = next;
        force((n) => n + 1);
      }
    };
    listeners.add(f);
    return () => void listeners.delete(f);
  }, []);
  return pick(state);
}

export function setCredentials(list: Credential[], replace: boolean, removed: string[] = []) {
  if (replace) state.creds = new Map();
  for (const c of list) state.creds.set(String(c.id), c);
  for (const id of removed) state.creds.delete(id);
  state.version++;
  changed();
}

export function addLogs(items: LogEntry[]) {
  const known = new Set(state.live.map((e) => e.id));
  const fresh = items.filter((e) => !known.has(e.id)).reverse();
  if (!fresh.length) return;
  state.live = [...fresh, ...state.live].slice(0, 500);
  changed();
}

let source: EventSource | null = null;

export function connect() {
  source?.close();
  const es = new EventSource("/admin/events");
  source = es;
  es.addEventListener("hello", () => {
    state.connected = true;
    state.everConnected = true;
    changed();
  });
  es.addEventListener("credentials", (ev) => {
    const d = JSON.parse((ev as MessageEvent).data);
    setCredentials(d.changed, false, d.removed);
  });
  es.addEventListener("logs", (ev) => addLogs(JSON.parse((ev as MessageEvent).data).items));
  es.onerror = () => {
    if (state.connected) {
      state.connected = false;
      changed();
    }
  };
}

export function disconnect() {
  source?.close();
  source = null;
  state.connected = false;
  changed();
}

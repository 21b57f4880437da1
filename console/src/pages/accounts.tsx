import { memo } from "preact/compat";
import { useEffect, useMemo, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { Credential, setCredentials, state, useStore } from "../store";
import { ago, Notice, until, useTick } from "../ui";
import { AddDialog } from "./add";

const PAGE = 50;
const balances = new Map<string, any>(); // id -> balance answer (or {error})

function masked(c: Credential): string {
  return c.refreshTokenHash ? c.refreshTokenHash.slice(0, 8) + "…" : "—";
}

function countdown(c: Credential): string | null {
  const until_ = c.cooldownUntil || c.exhaustedUntil || c.unhealthyUntil;
  return until_ ? t("in {n} s", { n: Math.max(0, Math.round((Date.parse(until_) - Date.now()) / 1000)) }) : null;
}

function models(c: Credential): string {
  const title = (c.subscriptionTitle || "").toLowerCase();
  return title.includes("free") ? t("no Opus (free tier)") : t("all models");
}

export function Accounts() {
  const version = useStore((s) => s.version);
  useStore(() => balances.size);
  const [q, setQ] = useState("");
  const [page, setPage] = useState(0);
  const [sel, setSel] = useState<Set<string>>(new Set());
  const [msg, setMsg] = useState<{ text: string; kind: "ok" | "error" } | null>(null);
  const [adding, setAdding] = useState(false);
  const [, bump] = useState(0);
  const all = useMemo(() => {
    const list = [...state.creds.values()].sort((a, b) => a.priority - b.priority || Number(a.id) - Number(b.id));
    const needle = q.trim().toLowerCase();
    return needle
      ? list.filter((c) => [c.name, c.email, String(c.id), c.authMethod, c.status].some((v) => (v || "").toLowerCase().includes(needle)))
      : list;
  }, [version, q]);
  const pages = Math.max(1, Math.ceil(all.length / PAGE));
  const p = Math.min(page, pages - 1);
  const rows = all.slice(p * PAGE, p * PAGE + PAGE);
  const visible = rows.map((c) => String(c.id)).join(",");
  useEffect(() => {
    let stop = false;
    (async () => {
      for (const id of visible.split(",")) {
        if (stop || !id || balances.has(id)) continue;
        try {
          balances.set(id, await api.get(`/credentials/${id}/balance`));
        } catch (e) {
          balances.set(id, { error: (e as Error).message });
        }
        if (!stop) bump((n) => n + 1);
      }
    })();
    return () => void (stop = true);
  }, [visible]);

  async function act(ids: string[], what: string) {
    let ok = 0;
    const errors: string[] = [];
    for (const id of ids) {
      try {
        if (what === "refresh") await api.post(`/credentials/${id}/refresh`);
        else if (what === "check") {
          balances.set(id, await api.get(`/credentials/${id}/balance?refresh=true`));
          bump((n) => n + 1);
        } else if (what === "reset") await api.post(`/credentials/${id}/reset`);
        else if (what === "enable") await api.post(`/credentials/${id}/disabled`, { disabled: false });
        else if (what === "disable") await api.post(`/credentials/${id}/disabled`, { disabled: true });
        else if (what === "delete") await api.del(`/credentials/${id}`);
        ok++;
      } catch (e) {
        errors.push(`#${id}: ${(e as Error).message}`);
      }
    }
    const fresh = await api.get("/credentials").catch(() => null);
    if (fresh) {
      setCredentials(fresh.credentials, true);
    }
    setMsg(errors.length ? { text: errors.join("; "), kind: "error" } : { text: `${t(label(what))}: ${ok} ✓`, kind: "ok" });
  }

  const selected = [...sel].filter((id) => state.creds.has(id));
  return (
    <section>
      <div class="head">
        <h1>{t("Accounts")}</h1>
        <span class="muted">
          {state.creds.size} · {[...state.creds.values()].filter((c) => c.status === "active").length} {t("active")}
        </span>
        <input type="search" placeholder={t("Search")} aria-label={t("Search")} value={q} onInput={(e) => (setQ(e.currentTarget.value), setPage(0))} />
        <button class="primary" onClick={() => setAdding(true)} data-action="add">
          {t("Add account")}
        </button>
      </div>
      <Notice msg={msg?.text || null} kind={msg?.kind} />
      {selected.length > 0 && (
        <div class="batch" role="toolbar" aria-label={t("Selected")}>
          <span>
            {t("Selected")}: {selected.length}
          </span>
          {["refresh", "check", "reset", "enable", "disable", "delete"].map((w) => (
            <button
              class="small"
              key={w}
              onClick={() => {
                const ids = w === "delete" ? selected.filter((id) => state.creds.get(id)?.disabled) : selected;
                if (w === "delete" && !confirm(t("Are you sure?"))) return;
                act(ids, w);
              }}
            >
              {t(label(w))}
            </button>
          ))}
        </div>
      )}
      <div class="scroll">
        <table class="grid accounts">
          <thead>
            <tr>
              <th>
                <input
                  type="checkbox"
                  aria-label={t("Selected")}
                  checked={rows.length > 0 && rows.every((c) => sel.has(String(c.id)))}
                  onChange={(e) => {
                    const next = new Set(sel);
                    rows.forEach((c) => (e.currentTarget.checked ? next.add(String(c.id)) : next.delete(String(c.id))));
                    setSel(next);
                  }}
                />
              </th>
              <th>{t("Name")}</th>
              <th>{t("Id")}</th>
              <th>{t("Auth")}</th>
              <th>{t("State")}</th>
              <th>{t("Priority")}</th>
              <th>{t("Enabled")}</th>
              <th>{t("Success")} / {t("Failures")}</th>
              <th>{t("Last used")}</th>
              <th>{t("Token expiry")}</th>
              <th>{t("Quota")}</th>
              <th>{t("Proxy")}</th>
              <th>{t("Models")}</th>
              <th>{t("Actions")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <Row
                key={c.id}
                c={c}
                checked={sel.has(String(c.id))}
                balance={balances.get(String(c.id))}
                onCheck={(on) =>
                  setSel((prev) => {
                    const next = new Set(prev);
                    on ? next.add(String(c.id)) : next.delete(String(c.id));
                    return next;
                  })
                }
                act={(w) => act([String(c.id)], w)}
                onError={(text) => setMsg({ text, kind: "error" })}
              />
            ))}
          </tbody>
        </table>
      </div>
      <div class="pager">
        <button class="small" disabled={p === 0} onClick={() => setPage(p - 1)}>
          {t("Previous")}
        </button>
        <span>
          {t("Page")} {p + 1} / {pages}
        </span>
        <button class="small" disabled={p >= pages - 1} onClick={() => setPage(p + 1)}>
          {t("Next")}
        </button>
      </div>
      {adding && <AddDialog onClose={() => setAdding(false)} />}
    </section>
  );
}

function label(w: string): string {
  return { refresh: "Refresh", check: "Check", reset: "Reset failures", enable: "Enable", disable: "Disable", delete: "Delete" }[w] || w;
}

// A row re-renders only when its credential, its check box or its balance changes: an event about
// one account repaints one row, not the page (the handlers read nothing that goes stale).
const Row = memo(function Row(props: {
  c: Credential;
  checked: boolean;
  balance: any;
  onCheck: (on: boolean) => void;
  act: (what: string) => void;
  onError: (m: string) => void;
}) {
  const { c, balance } = props;
  const cd = countdown(c);
  useTick(cd ? 1000 : 0);
  const id = String(c.id);
  const pct = balance && balance.usageLimit ? Math.min(100, (100 * balance.currentUsage) / balance.usageLimit) : null;
  return (
    <tr data-id={id} data-status={c.status}>
      <td>
        <input type="checkbox" aria-label={`#${id}`} checked={props.checked} onChange={(e) => props.onCheck(e.currentTarget.checked)} />
      </td>
      <td>
        <div class="namecell">
        <input
          class="inline"
          aria-label={t("Name")}
          value={c.name || ""}
          placeholder={c.email || "—"}
          onKeyDown={(e) => e.key === "Enter" && e.currentTarget.blur()}
          onBlur={async (e) => {
            const v = e.currentTarget.value.trim();
            if (v === (c.name || "")) return;
            try {
              await api.put(`/credentials/${id}/name`, { name: v });
            } catch (x) {
              props.onError((x as Error).message);
            }
          }}
        />
        {c.isCurrent && <span class="pill current">★</span>}
        </div>
      </td>
      <td class="mono">
        #{id} <span class="muted">{masked(c)}</span>
      </td>
      <td>{c.authMethod}</td>
      <td>
        <span class={"pill " + c.status}>{t(c.status)}</span>
        {cd && <span class="muted"> {cd}</span>}
        {(c.reason || c.disabledReason) && <div class="muted small">{t(c.disabledReason || c.reason || "")}</div>}
      </td>
      <td>
        <input
          type="number"
          class="num"
          min={0}
          aria-label={t("Priority")}
          value={c.priority}
          onChange={async (e) => {
            try {
              await api.post(`/credentials/${id}/priority`, { priority: Number(e.currentTarget.value) });
            } catch (x) {
              props.onError((x as Error).message);
            }
          }}
        />
      </td>
      <td>
        <label class="switch">
          <input
            type="checkbox"
            role="switch"
            aria-label={t("Enabled")}
            checked={!c.disabled}
            onChange={(e) => props.act(e.currentTarget.checked ? "enable" : "disable")}
          />
          <span />
        </label>
      </td>
      <td>
        {c.successCount} / <span class={c.failureCount ? "bad" : ""}>{c.failureCount}</span>
      </td>
      <td>{ago(c.lastUsedAt)}</td>
      <td>{c.authMethod === "api_key" ? "—" : until(c.expiresAt)}</td>
      <td class="quota">
        {balance && !balance.error && pct !== null ? (
          <div title={`${balance.currentUsage} / ${balance.usageLimit}`}>
            <div class="bar">
              <i style={{ width: pct + "%" }} />
            </div>
            <span class="small muted">
              {Math.round(balance.remaining)} · {balance.nextResetAt ? balance.nextResetAt.slice(0, 10) : ""}
            </span>
          </div>
        ) : (
          <span class="muted">—</span>
        )}
      </td>
      <td class="small">{c.proxyUrl || (c.hasProxy ? "global" : "—")}</td>
      <td class="small">{models(c)}</td>
      <td>
        <div class="actions">
        <button class="small" onClick={() => props.act("refresh")} disabled={c.authMethod === "api_key"}>
          {t("Refresh")}
        </button>
        <button class="small" onClick={() => props.act("check")}>
          {t("Check")}
        </button>
        <button class="small" onClick={() => props.act("reset")}>
          {t("Reset failures")}
        </button>
        <button
          class="small danger"
          disabled={!c.disabled}
          title={c.disabled ? "" : t("Delete only when disabled")}
          onClick={() => confirm(t("Are you sure?")) && props.act("delete")}
          data-action="delete"
        >
          {t("Delete")}
        </button>
        </div>
      </td>
    </tr>
  );
}, (a, b) => a.c === b.c && a.checked === b.checked && a.balance === b.balance);

import { useEffect, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { LogEntry, useStore } from "../store";
import { Modal, ms, Notice } from "../ui";

const FILTERS = ["status", "model", "credential", "key", "q", "since"] as const;
const LABELS: Record<string, string> = { status: "Status", model: "Model", credential: "Account", key: "Key", q: "Text", since: "Since" };

export function Logs() {
  const [f, setF] = useState<Record<string, string>>({});
  const [items, setItems] = useState<LogEntry[]>([]);
  const [total, setTotal] = useState(0);
  const [offset, setOffset] = useState(0);
  const [tail, setTail] = useState(true);
  const [err, setErr] = useState<string | null>(null);
  const [detail, setDetail] = useState<LogEntry | null>(null);
  const live = useStore((s) => s.live);
  const query = () => {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (f[k]?.trim()) p.set(k, f[k].trim());
    return p;
  };
  const load = () => {
    const p = query();
    p.set("limit", "100");
    p.set("offset", String(offset));
    api
      .get("/logs?" + p)
      .then((d) => (setItems(d.items), setTotal(d.total), setErr(null)))
      .catch((e) => setErr(e.message));
  };
  useEffect(load, [offset]);
  const filtered = Object.values(f).some((v) => v && v.trim());
  // Live tail: new entries from the event stream go on top when no filter and first page.
  const shown =
    tail && !filtered && offset === 0
      ? [...live.filter((e) => !items.some((i) => i.id === e.id)), ...items].slice(0, 200)
      : items;
  return (
    <section>
      <div class="head">
        <h1>{t("Logs")}</h1>
        <label class="check">
          <input type="checkbox" checked={tail} onChange={(e) => setTail(e.currentTarget.checked)} /> {t("Live tail")}
        </label>
        <a class="button small" href={"/api/admin/logs/export?" + query()} download>
          {t("Export")}
        </a>
      </div>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setOffset(0);
          load();
        }}
      >
        {FILTERS.map((k) => (
          <label key={k}>
            {t(LABELS[k])}
            <input name={k} value={f[k] || ""} placeholder={k === "status" ? "4xx, 429, error, ok" : k === "since" ? "2026-01-01T00:00:00Z" : ""} onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })} />
          </label>
        ))}
        <button class="small" type="submit">
          {t("Search")}
        </button>
      </form>
      <Notice msg={err} />
      <div class="scroll">
        <table class="grid logs">
          <thead>
            <tr>
              <th>{t("Time")}</th>
              <th>{t("Dialect")}</th>
              <th>{t("Model")}</th>
              <th>{t("Account")}</th>
              <th>{t("Key")}</th>
              <th>{t("Status")}</th>
              <th>{t("Time to first token")}</th>
              <th>{t("Latency")}</th>
              <th>{t("Tokens")}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.id} class={e.isError ? "err" : ""} tabIndex={0} onClick={() => setDetail(e)} onKeyDown={(k) => k.key === "Enter" && setDetail(e)} data-log={e.id}>
                <td class="mono">{e.at.slice(11, 19)}</td>
                <td>{e.dialect}</td>
                <td>{e.model}</td>
                <td>{e.credential ? "#" + e.credential : "—"}</td>
                <td>{e.key}</td>
                <td>{e.status}{e.error ? " " + e.error : ""}</td>
                <td>{ms(e.ttfbMs)}</td>
                <td>{ms(e.totalMs)}</td>
                <td>
                  {e.tokensIn} / {e.tokensOut}
                </td>
              </tr>
            ))}
            {!shown.length && (
              <tr>
                <td colSpan={9} class="muted">
                  {t("No entries.")}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <div class="pager">
        <button class="small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 100))}>
          {t("Previous")}
        </button>
        <span>
          {offset + 1}–{Math.min(total, offset + 100)} / {total}
        </span>
        <button class="small" disabled={offset + 100 >= total} onClick={() => setOffset(offset + 100)}>
          {t("Next")}
        </button>
      </div>
      {detail && (
        <Modal title={t("Detail")} onClose={() => setDetail(null)} wide>
          <pre class="detail">{JSON.stringify(detail, null, 2)}</pre>
        </Modal>
      )}
    </section>
  );
}

import { useEffect, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { CopyButton, Modal, Notice, num } from "../ui";
import { state, useStore } from "../store";

// A key may be pinned to one account: its requests are served by that account only.
function PinSelect(props: { value: string; onChange: (v: string) => void; name?: string }) {
  useStore((s) => s.version);
  const creds = [...state.creds.values()];
  return (
    <select name={props.name} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
      <option value="">{t("any account")}</option>
      {creds.map((c) => (
        <option key={c.id} value={String(c.id)}>
          #{c.id}
          {c.name ? ` ${c.name}` : c.email ? ` ${c.email}` : ""}
        </option>
      ))}
    </select>
  );
}

export function Keys() {
  const [keys, setKeys] = useState<any[]>([]);
  const [err, setErr] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [rpm, setRpm] = useState("");
  const [tpd, setTpd] = useState("");
  const [pin, setPin] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const load = () => api.get("/keys").then((d) => setKeys(d.keys)).catch((e) => setErr(e.message));
  useEffect(() => void load(), []);
  const limit = (v: string) => (v.trim() ? Number(v) : null);
  return (
    <section>
      <h1>{t("Client keys")}</h1>
      <form
        class="form inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setErr(null);
          try {
            const k = await api.post("/keys", { name, requestsPerMinute: limit(rpm), tokensPerDay: limit(tpd), credential: pin || null });
            setSecret(k.key);
            setName("");
            load();
          } catch (x) {
            setErr((x as Error).message);
          }
        }}
      >
        <label>
          {t("Name")}
          <input name="keyName" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </label>
        <label>
          {t("Requests per minute")}
          <input type="number" min={0} value={rpm} onInput={(e) => setRpm(e.currentTarget.value)} />
        </label>
        <label>
          {t("Tokens per day")}
          <input type="number" min={0} value={tpd} onInput={(e) => setTpd(e.currentTarget.value)} />
        </label>
        <label>
          {t("Served by")}
          <PinSelect name="keyCredential" value={pin} onChange={setPin} />
        </label>
        <button class="primary" type="submit">
          {t("Create")}
        </button>
      </form>
      <Notice msg={err} />
      <table class="grid">
        <thead>
          <tr>
            <th>{t("Name")}</th>
            <th>{t("Key")}</th>
            <th>{t("Requests per minute")}</th>
            <th>{t("Tokens per day")}</th>
            <th>{t("Served by")}</th>
            <th>{t("Usage today")}</th>
            <th>{t("Last 7 days")}</th>
            <th>{t("Created")}</th>
            <th>{t("Actions")}</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td class="mono">{k.hint}</td>
              <td>{k.requestsPerMinute ?? "∞"}</td>
              <td>{k.tokensPerDay ?? "∞"}</td>
              <td>
                <PinSelect
                  value={k.credential == null ? "" : String(k.credential)}
                  onChange={async (v) => {
                    try {
                      await api.patch(`/keys/${k.id}`, { credential: v || null });
                      load();
                    } catch (x) {
                      setErr((x as Error).message);
                    }
                  }}
                />
              </td>
              <td>
                {k.usageToday.requests} · {num(k.usageToday.tokensIn + k.usageToday.tokensOut)}
              </td>
              <td>
                {k.usageLast7Days.requests} · {num(k.usageLast7Days.tokensIn + k.usageLast7Days.tokensOut)}
              </td>
              <td>{(k.createdAt || "").slice(0, 10)}</td>
              <td class="actions">
                <button
                  class="small"
                  onClick={async () => {
                    const n = prompt(t("Rename"), k.name);
                    if (!n) return;
                    const r = prompt(t("Requests per minute"), k.requestsPerMinute ?? "");
                    const d = prompt(t("Tokens per day"), k.tokensPerDay ?? "");
                    try {
                      await api.patch(`/keys/${k.id}`, { name: n, requestsPerMinute: limit(r || ""), tokensPerDay: limit(d || "") });
                      load();
                    } catch (x) {
                      setErr((x as Error).message);
                    }
                  }}
                >
                  {t("Rename")}
                </button>
                <button
                  class="small danger"
                  onClick={async () => {
                    if (!confirm(t("Are you sure?"))) return;
                    try {
                      await api.del(`/keys/${k.id}`);
                      load();
                    } catch (x) {
                      setErr((x as Error).message);
                    }
                  }}
                >
                  {t("Delete")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {secret && (
        <Modal title={t("Secret (shown once)")} onClose={() => setSecret(null)}>
          <p>{t("Copy it now: it is not shown again.")}</p>
          <pre class="secret">{secret}</pre>
          <div class="buttons">
            <CopyButton text={secret} />
            <button class="primary" onClick={() => setSecret(null)}>
              {t("Done")}
            </button>
          </div>
        </Modal>
      )}
    </section>
  );
}

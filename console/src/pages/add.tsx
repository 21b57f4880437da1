// The Add dialog: one credential by hand (Social, IdC / Builder ID, API key), import from the
// local Kiro IDE cache and kiro-cli, batch import of refresh tokens, and Log in (device code or
// social sign-in, run by the gateway).
import { useEffect, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { setCredentials } from "../store";
import { Modal, Notice } from "../ui";

const TABS = ["Social", "IdC / Builder ID", "API key", "Import", "Batch import", "Log in"];
const REGIONS = ["us-east-1", "eu-central-1", "us-west-2", "ap-southeast-1", "ap-northeast-1", "eu-west-1"];

async function reload() {
  const d = await api.get("/credentials");
  setCredentials(d.credentials, true);
}

export function AddDialog(props: { onClose: () => void }) {
  const [tab, setTab] = useState(TABS[0]);
  return (
    <Modal title={t("Add account")} onClose={props.onClose} wide>
      <div
        class="tabs"
        role="tablist"
        onKeyDown={(e) => {
          // Arrow keys move between the tabs, as in any tab list.
          const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
          if (!step) return;
          e.preventDefault();
          const next = TABS[(TABS.indexOf(tab) + step + TABS.length) % TABS.length];
          setTab(next);
          const el = e.currentTarget.querySelectorAll<HTMLElement>("[role=tab]")[TABS.indexOf(next)];
          el?.focus();
        }}
      >
        {TABS.map((x) => (
          <button
            role="tab"
            aria-selected={tab === x}
            tabIndex={tab === x ? 0 : -1}
            class={tab === x ? "tab on" : "tab"}
            key={x}
            data-tab={x}
            onClick={() => setTab(x)}
          >
            {t(x)}
          </button>
        ))}
      </div>
      {tab === "Import" ? <ImportTab /> : tab === "Batch import" ? <BatchTab /> : tab === "Log in" ? <LoginTab /> : <ManualTab kind={tab} onClose={props.onClose} />}
    </Modal>
  );
}

function Field(props: { label: string; name: string; type?: string; value: string; set: (v: string) => void; required?: boolean; list?: string }) {
  return (
    <label>
      {props.label}
      <input
        name={props.name}
        type={props.type || "text"}
        autocomplete="off"
        value={props.value}
        list={props.list}
        required={props.required}
        onInput={(e) => props.set(e.currentTarget.value)}
      />
    </label>
  );
}

function ManualTab(props: { kind: string; onClose: () => void }) {
  const [f, setF] = useState<Record<string, string>>({ region: "us-east-1" });
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: string) => (v: string) => setF({ ...f, [k]: v });
  const v = (k: string) => f[k] || "";
  const idc = props.kind === "IdC / Builder ID";
  const key = props.kind === "API key";
  return (
    <form
      class="form"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setErr(null);
        const body: Record<string, unknown> = { authMethod: key ? "api_key" : idc ? "idc" : "social" };
        for (const [k, val] of Object.entries(f)) if (val.trim()) body[k] = val.trim();
        if (f.priority) body.priority = Number(f.priority);
        try {
          await api.post("/credentials", body);
          setF({ region: "us-east-1" }); // the secrets leave the page's memory
          await reload();
          props.onClose();
        } catch (x) {
          setErr((x as Error).message);
        } finally {
          setBusy(false);
        }
      }}
    >
      <Field label={t("Name (optional)")} name="name" value={v("name")} set={set("name")} />
      {key ? (
        <Field label={t("Kiro API key (ksk_…)")} name="kiroApiKey" type="password" value={v("kiroApiKey")} set={set("kiroApiKey")} required />
      ) : (
        <label>
          {t("Refresh token")}
          <textarea name="refreshToken" rows={3} value={v("refreshToken")} onInput={(e) => set("refreshToken")(e.currentTarget.value)} required />
        </label>
      )}
      {idc && (
        <div class="row2">
          <Field label={t("Client id")} name="clientId" value={v("clientId")} set={set("clientId")} required />
          <Field label={t("Client secret")} name="clientSecret" type="password" value={v("clientSecret")} set={set("clientSecret")} required />
        </div>
      )}
      <div class="row2">
        <Field label={t("Region")} name="region" value={v("region")} set={set("region")} list="regions" />
        <Field label={t("Priority")} name="priority" type="number" value={v("priority")} set={set("priority")} />
      </div>
      <datalist id="regions">
        {REGIONS.map((r) => (
          <option key={r} value={r} />
        ))}
      </datalist>
      <div class="row3">
        <Field label={t("Proxy URL")} name="proxyUrl" value={v("proxyUrl")} set={set("proxyUrl")} />
        <Field label={t("Proxy user")} name="proxyUsername" value={v("proxyUsername")} set={set("proxyUsername")} />
        <Field label={t("Proxy password")} name="proxyPassword" type="password" value={v("proxyPassword")} set={set("proxyPassword")} />
      </div>
      <Notice msg={err} />
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>
          {t("Add")}
        </button>
      </div>
    </form>
  );
}

function ImportTab() {
  const [res, setRes] = useState<any>(null);
  const [err, setErr] = useState<string | null>(null);
  return (
    <div class="form">
      <p>{t("Import from the Kiro IDE cache and kiro-cli")}</p>
      <button
        class="primary"
        onClick={async () => {
          setErr(null);
          try {
            setRes(await api.post("/credentials/import", {}));
            await reload();
          } catch (x) {
            setErr((x as Error).message);
          }
        }}
      >
        {t("Import")}
      </button>
      <Notice msg={err} />
      {res && <Notice kind="ok" msg={t("{a} added, {s} skipped as duplicates, {f} failed", { a: res.added.length, s: res.skipped.length, f: res.errors.length })} />}
    </div>
  );
}

export function parseTokens(text: string): string[] {
  const s = text.trim();
  let items: unknown[] = [];
  if (s.startsWith("[") || s.startsWith("{")) {
    try {
      const j = JSON.parse(s);
      items = Array.isArray(j) ? j : [j];
    } catch {
      items = s.split(/\s+/);
    }
  } else items = s.split(/\s+/);
  const out = items
    .map((x) => (typeof x === "string" ? x : x && typeof x === "object" ? String((x as any).refreshToken || "") : ""))
    .map((x) => x.trim())
    .filter(Boolean);
  return [...new Set(out)];
}

function BatchTab() {
  const [text, setText] = useState("");
  const [progress, setProgress] = useState<{ done: number; total: number; added: number; skipped: number; failed: string[] } | null>(null);
  return (
    <div class="form">
      <label>
        {t("Refresh tokens, one per line, or a JSON array")}
        <textarea name="batch" rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button
        class="primary"
        disabled={!text.trim() || (progress !== null && progress.done < progress.total)}
        onClick={async () => {
          const tokens = parseTokens(text);
          setText("");
          const p = { done: 0, total: tokens.length, added: 0, skipped: 0, failed: [] as string[] };
          setProgress({ ...p });
          for (const tok of tokens) {
            try {
              await api.post("/credentials", { refreshToken: tok, authMethod: "social" });
              p.added++;
            } catch (x) {
              if (x instanceof api.ApiError && x.status === 409) p.skipped++;
              else p.failed.push(`${p.done + 1}: ${(x as Error).message}`);
            }
            p.done++;
            setProgress({ ...p, failed: [...p.failed] });
          }
          await reload();
        }}
      >
        {t("Import")}
      </button>
      {progress && (
        <div>
          <progress max={progress.total} value={progress.done} />
          <Notice kind="ok" msg={t("{a} added, {s} skipped as duplicates, {f} failed", { a: progress.added, s: progress.skipped, f: progress.failed.length })} />
          {progress.failed.length > 0 && <Notice msg={progress.failed.join("; ")} />}
        </div>
      )}
    </div>
  );
}

function LoginTab() {
  const [method, setMethod] = useState("builder-id");
  const [startUrl, setStartUrl] = useState("");
  const [region, setRegion] = useState("us-east-1");
  const [provider, setProvider] = useState("google");
  const [login, setLogin] = useState<any>(null);
  const [status, setStatus] = useState<any>(null);
  const [pasted, setPasted] = useState("");
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => {
    if (!login || (status && status.status !== "pending")) return;
    const id = setInterval(async () => {
      try {
        const s = await api.get(`/logins/${encodeURIComponent(login.id)}`);
        setStatus(s);
        if (s.status === "done") await reload();
      } catch (x) {
        setErr((x as Error).message);
      }
    }, 2000);
    return () => clearInterval(id);
  }, [login, status && status.status]);
  const result = status && status.status !== "pending" ? status : null;
  return (
    <div class="form">
      <div class="row3">
        <label>
          {t("Log in with")}
          <select name="method" value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            <option value="builder-id">AWS Builder ID</option>
            <option value="idc">IAM Identity Center</option>
            <option value="social">Google / GitHub</option>
          </select>
        </label>
        {method === "idc" && <Field label={t("Start URL")} name="startUrl" value={startUrl} set={setStartUrl} required />}
        {method !== "social" && <Field label={t("Region")} name="loginRegion" value={region} set={setRegion} list="regions" />}
        {method === "social" && (
          <label>
            {t("Provider")}
            <select name="provider" value={provider} onChange={(e) => setProvider(e.currentTarget.value)}>
              <option value="google">Google</option>
              <option value="github">GitHub</option>
            </select>
          </label>
        )}
      </div>
      <button
        class="primary"
        data-action="start-login"
        onClick={async () => {
          setErr(null);
          setStatus(null);
          try {
            const body: Record<string, string> = { method };
            if (method === "idc") body.startUrl = startUrl;
            if (method !== "social") body.region = region;
            else body.provider = provider;
            setLogin(await api.post("/logins", body));
          } catch (x) {
            setErr((x as Error).message);
          }
        }}
      >
        {t("Start")}
      </button>
      <Notice msg={err} />
      {login && login.userCode && (
        <div class="device">
          <p>{t("Open this page and enter the code")}</p>
          <p>
            <a href={login.verificationUriComplete || login.verificationUri} target="_blank" rel="noopener noreferrer">
              {login.verificationUri}
            </a>
          </p>
          <p class="code" data-user-code>{login.userCode}</p>
        </div>
      )}
      {login && login.authorizeUrl && (
        <div class="device">
          <p>
            <a href={login.authorizeUrl} target="_blank" rel="noopener noreferrer" data-authorize>
              {t("Open the sign-in page")}
            </a>
          </p>
          <label>
            {t("If the browser cannot reach the gateway, paste the final URL here")}
            <input name="callbackUrl" value={pasted} onInput={(e) => setPasted(e.currentTarget.value)} />
          </label>
          <button
            class="small"
            data-action="send-callback"
            disabled={!pasted.trim()}
            onClick={async () => {
              try {
                setStatus(await api.post(`/logins/${encodeURIComponent(login.id)}/callback`, { url: pasted.trim() }));
                setPasted("");
              } catch (x) {
                setErr((x as Error).message);
              }
            }}
          >
            {t("Send")}
          </button>
        </div>
      )}
      {login && !result && <p class="muted" role="status">{t("Waiting for approval…")}</p>}
      {result && (
        <Notice
          kind={result.status === "done" ? "ok" : "error"}
          msg={
            result.status === "done"
              ? t(result.duplicate ? "Logged in: this account is already #{id}; nothing added." : "Logged in: account #{id} added.", { id: result.credentialId })
              : result.status === "expired"
              ? t("The login expired.")
              : result.status === "denied"
              ? t("The login was denied.")
              : t("The login failed.") + (result.error ? " " + result.error : "")
          }
        />
      )}
    </div>
  );
}

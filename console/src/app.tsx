// The shell: sign-in gate, navigation (hash routes), language and theme switches, the
// connection-lost banner. Pages live in pages/.
import { useEffect, useState } from "preact/hooks";
import * as api from "./api";
import { getLang, setLang, t } from "./i18n";
import { connect, disconnect, setCredentials, state, useStore } from "./store";
import { Accounts } from "./pages/accounts";
import { Connect } from "./pages/connect";
import { Keys } from "./pages/keys";
import { Logs } from "./pages/logs";
import { Overview } from "./pages/overview";
import { Playground } from "./pages/playground";
import { Settings } from "./pages/settings";

const PAGES: [string, string, () => preact.JSX.Element][] = [
  ["overview", "Overview", Overview],
  ["accounts", "Accounts", Accounts],
  ["keys", "Client keys", Keys],
  ["playground", "Playground", Playground],
  ["logs", "Logs", Logs],
  ["settings", "Settings", Settings],
  ["connect", "Connect", Connect],
];

function route(): string {
  const h = location.hash.replace(/^#\/?/, "");
  return PAGES.some((p) => p[0] === h) ? h : "overview";
}

function theme(): string {
  return localStorage.getItem("kg.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

export function Toolbar() {
  useStore(() => getLang());
  const [mode, setMode] = useState(theme());
  useEffect(() => {
    document.documentElement.dataset.theme = mode;
  }, [mode]);
  return (
    <div class="toolbar" role="group">
      <button class={getLang() === "en" ? "small on" : "small"} aria-pressed={getLang() === "en"} onClick={() => setLang("en")}>
        English
      </button>
      <button class={getLang() === "zh" ? "small on" : "small"} aria-pressed={getLang() === "zh"} onClick={() => setLang("zh")}>
        中文
      </button>
      <button
        class="small"
        onClick={() => {
          const next = mode === "dark" ? "light" : "dark";
          localStorage.setItem("kg.theme", next);
          setMode(next);
        }}
      >
        {mode === "dark" ? t("Light") : t("Dark")}
      </button>
    </div>
  );
}

function SignIn(props: { onDone: () => void }) {
  const [key, setKey] = useState("");
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <Toolbar />
      <form
        class="card"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setErr(null);
          try {
            await api.signIn(key);
            setKey("");
            props.onDone();
          } catch (x) {
            setErr(x instanceof api.ApiError && x.status === 401 ? t("Wrong admin key.") : String((x as Error).message));
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>kiro-gateway</h1>
        <p>{t("Sign in with the gateway's adminApiKey.")}</p>
        <label>
          {t("Admin key")}
          <input type="password" name="key" autocomplete="current-password" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        </label>
        {err && <p class="notice error" role="alert">{err}</p>}
        <button type="submit" class="primary" disabled={busy}>
          {t("Sign in")}
        </button>
      </form>
    </main>
  );
}

function Disabled() {
  return (
    <main class="signin">
      <Toolbar />
      <div class="card">
        <h1>{t("The console is disabled")}</h1>
        <p>{t("Set adminApiKey in config.json (or the environment variable KIRO_GATEWAY_ADMIN_API_KEY), then reload this page. There is no default password.")}</p>
        <pre>{'{\n  "adminApiKey": "<a long random string>"\n}'}</pre>
      </div>
    </main>
  );
}

function Shell(props: { onSignOut: () => void }) {
  const [page, setPage] = useState(route());
  const connected = useStore((s) => s.connected);
  const ever = useStore((s) => s.everConnected);
  useStore(() => getLang());
  useEffect(() => {
    const f = () => setPage(route());
    addEventListener("hashchange", f);
    api.get("/credentials").then((d) => setCredentials(d.credentials, true)).catch(() => {});
    connect();
    return () => {
      removeEventListener("hashchange", f);
      disconnect();
    };
  }, []);
  const Page = PAGES.find((p) => p[0] === page)![2];
  return (
    <div class="shell">
      <nav aria-label="main">
        <div class="brand">kiro-gateway</div>
        <ul>
          {PAGES.map(([id, label]) => (
            <li key={id}>
              <a href={"#/" + id} aria-current={id === page ? "page" : undefined} data-page={id}>
                {t(label)}
              </a>
            </li>
          ))}
        </ul>
        <div class="navfoot">
          <Toolbar />
          <button
            class="small"
            onClick={async () => {
              await api.signOut();
              props.onSignOut();
            }}
          >
            {t("Sign out")}
          </button>
        </div>
      </nav>
      <main id="page" data-page={page}>
        {!connected && ever && (
          <div class="banner" role="alert">
            {t("Connection lost — reconnecting…")}
          </div>
        )}
        <Page />
      </main>
    </div>
  );
}

export function App() {
  const [s, setS] = useState<api.SessionState | null>(null);
  const refresh = () =>
    api
      .session()
      .then(setS)
      .catch(() => setS({ enabled: true, signedIn: false }));
  useEffect(() => {
    refresh();
    api.whenSignedOut(() => {
      state.creds.clear();
      setS((cur) => (cur ? { ...cur, signedIn: false } : cur));
    });
  }, []);
  if (!s) return <p class="loading">…</p>;
  if (!s.enabled) return <Disabled />;
  if (!s.signedIn) return <SignIn onDone={refresh} />;
  return <Shell onSignOut={refresh} />;
}

import { useEffect, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { Notice } from "../ui";

const NUMBERS: [string, string][] = [
  ["cooldownSeconds", "Cooldown after 429 (s)"],
  ["unhealthySeconds", "Unhealthy pause (s)"],
  ["failureLimit", "Failures before unhealthy"],
  ["maxAttempts", "Max attempts"],
  ["maxAttemptsPerCredential", "Max attempts per account"],
  ["stickySeconds", "Session stickiness (s)"],
  ["maxConcurrentPerCredential", "Max concurrent per account (0 = no limit)"],
  ["maxRpmPerCredential", "Max requests per minute per account (0 = no limit)"],
  ["queueTimeout", "Queue timeout (s)"],
  ["minIntervalPerCredential", "Minimum interval between requests per account (s)"],
  ["pacingJitter", "Random share added to that interval (0–1)"],
];

export function Settings() {
  const [s, setS] = useState<any>(null);
  const [map, setMap] = useState("");
  const [fallbacks, setFallbacks] = useState("");
  const [pw, setPw] = useState<string | null>(null);
  const [msg, setMsg] = useState<{ text: string; kind: "ok" | "error" } | null>(null);
  const take = (d: any) => (
    setS(d), setMap(JSON.stringify(d.modelMap, null, 2)), setFallbacks(JSON.stringify(d.modelFallbacks || {}, null, 2)), setPw(null)
  );
  useEffect(() => void api.get("/config/settings").then(take).catch((e) => setMsg({ text: e.message, kind: "error" })), []);
  if (!s) return <section><h1>{t("Settings")}</h1><Notice msg={msg?.text || null} /></section>;
  const set = (k: string, v: unknown) => setS({ ...s, [k]: v });
  return (
    <section>
      <h1>{t("Settings")}</h1>
      <form
        class="form settings"
        onSubmit={async (e) => {
          e.preventDefault();
          let modelMap: unknown, modelFallbacks: unknown;
          try {
            modelMap = JSON.parse(map || "{}");
          } catch (x) {
            setMsg({ text: "modelMap: " + (x as Error).message, kind: "error" });
            return;
          }
          try {
            modelFallbacks = JSON.parse(fallbacks || "{}");
          } catch (x) {
            setMsg({ text: "modelFallbacks: " + (x as Error).message, kind: "error" });
            return;
          }
          const body: Record<string, unknown> = {
            loadBalancing: s.loadBalancing,
            overflowPolicy: s.overflowPolicy,
            modelMap,
            modelFallbacks,
            logBodies: s.logBodies,
            webSearch: s.webSearch,
            defaultModel: s.defaultModel || "",
          };
          for (const [k] of NUMBERS) body[k] = Number(s[k]);
          body.proxyUrl = s.proxyUrlEdit ?? s.proxyUrl ?? "";
          body.proxyUsername = s.proxyUsername || "";
          if (pw !== null) body.proxyPassword = pw;
          try {
            take(await api.put("/config/settings", body));
            setMsg({ text: t("Saved to config.json and applied."), kind: "ok" });
          } catch (x) {
            setMsg({ text: (x as Error).message, kind: "error" });
          }
        }}
      >
        <label>
          {t("Load balancing")}
          <select name="loadBalancing" value={s.loadBalancing} onChange={(e) => set("loadBalancing", e.currentTarget.value)}>
            <option value="priority">priority</option>
            <option value="balanced">balanced</option>
            <option value="round_robin">round_robin</option>
            <option value="random">random</option>
          </select>
        </label>
        <label>
          {t("When a conversation outgrows the model's window")}
          <select name="overflowPolicy" value={s.overflowPolicy} onChange={(e) => set("overflowPolicy", e.currentTarget.value)}>
            <option value="compact">{t("compact: summarise the oldest turns")}</option>
            <option value="trim">{t("trim: drop the oldest turns")}</option>
            <option value="error">{t("error: tell the client the context is full")}</option>
          </select>
        </label>
        <div class="row3">
          {NUMBERS.map(([k, label]) => (
            <label key={k}>
              {t(label)}
              <input name={k} type="number" min={0} step="any" value={s[k]} onInput={(e) => set(k, e.currentTarget.value)} />
            </label>
          ))}
        </div>
        <div class="row3">
          <label>
            {t("Proxy URL")}
            <input name="proxyUrl" value={s.proxyUrlEdit ?? s.proxyUrl ?? ""} onInput={(e) => set("proxyUrlEdit", e.currentTarget.value)} />
          </label>
          <label>
            {t("Proxy user")}
            <input name="proxyUsername" value={s.proxyUsername || ""} onInput={(e) => set("proxyUsername", e.currentTarget.value)} />
          </label>
          <label>
            {t("Proxy password")}
            <input
              name="proxyPassword"
              type="password"
              autocomplete="new-password"
              placeholder={s.hasProxyPassword ? t("a password is set; type to replace, clear to remove") : ""}
              value={pw ?? ""}
              onInput={(e) => setPw(e.currentTarget.value)}
            />
          </label>
        </div>
        <label>
          {t("Model map (JSON: client model → Kiro model)")}
          <textarea name="modelMap" rows={5} value={map} onInput={(e) => setMap(e.currentTarget.value)} />
        </label>
        <label>
          {t("Model fallbacks (JSON: model → models to try when no account can serve it)")}
          <textarea name="modelFallbacks" rows={4} value={fallbacks} onInput={(e) => setFallbacks(e.currentTarget.value)} />
        </label>
        <div class="row3">
          <label>
            {t("Default model")}
            <input name="defaultModel" value={s.defaultModel || ""} onInput={(e) => set("defaultModel", e.currentTarget.value)} />
          </label>
          <label class="check">
            <input type="checkbox" checked={s.logBodies} onChange={(e) => set("logBodies", e.currentTarget.checked)} /> {t("Log request bodies (redacted)")}
          </label>
          <label class="check">
            <input
              type="checkbox"
              name="webSearch"
              checked={s.webSearch === "on"}
              onChange={(e) => set("webSearch", e.currentTarget.checked ? "on" : "off")}
            />{" "}
            {t("Answer web search tools through Kiro's web search")}
          </label>
        </div>
        <Notice msg={msg?.text || null} kind={msg?.kind} />
        <div class="buttons">
          <button type="submit" class="primary">
            {t("Save")}
          </button>
        </div>
      </form>
    </section>
  );
}

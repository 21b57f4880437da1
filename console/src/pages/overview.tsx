import { useEffect, useState } from "preact/hooks";
import * as api from "../api";
import { Chart } from "../chart";
import { t } from "../i18n";
import { state, useStore } from "../store";
import { ms, num, Notice } from "../ui";

export function Overview() {
  const [stats, setStats] = useState<any>(null);
  const [err, setErr] = useState<string | null>(null);
  const version = useStore((s) => s.version);
  const live = useStore((s) => s.live);
  useEffect(() => {
    let stop = false;
    const load = () =>
      api
        .get("/stats?hours=24")
        .then((d) => !stop && (setStats(d), setErr(null)))
        .catch((e) => !stop && setErr(e.message));
    load();
    const id = setInterval(load, 15000);
    return () => {
      stop = true;
      clearInterval(id);
    };
  }, [live.length > 0 ? live[0].id : ""]);
  const creds = [...state.creds.values()];
  const routable = creds.filter((c) => c.status === "active").length;
  void version;
  if (!stats) return <section><h1>{t("Overview")}</h1><Notice msg={err} />{!err && <p>{t("Loading")}…</p>}</section>;
  const tot = stats.totals;
  const rate = tot.requests ? ((1 - tot.errorRate) * 100).toFixed(1) + "%" : "—";
  const hours = stats.trend.map((x: any) => x.hour.slice(11, 16));
  const names = new Map(creds.map((c) => [String(c.id), c.name || c.email || "#" + c.id]));
  return (
    <section>
      <h1>{t("Overview")}</h1>
      <Notice msg={err} />
      <div class="kpis">
        <Kpi label={t("Requests (24 h)")} value={num(tot.requests)} />
        <Kpi label={t("Success rate")} value={rate} />
        <Kpi label={t("Time to first token p50")} value={ms(tot.ttfbMs.p50 ?? tot.ttfbMs.avg)} />
        <Kpi label={t("Latency p50")} value={ms(tot.latencyMs.p50)} />
        <Kpi label={t("Tokens")} value={num(tot.tokensIn + tot.tokensOut)} />
        <Kpi label={t("Credits")} value={num(tot.credits, 2)} />
        <Kpi label={t("Routable accounts")} value={`${routable} / ${creds.length}`} />
      </div>
      <div class="charts">
        <Chart title={t("Request rate")} values={stats.trend.map((x: any) => x.requests)} labels={hours} />
        <Chart title={t("Errors")} values={stats.trend.map((x: any) => x.errors)} labels={hours} color="var(--bad)" />
      </div>
      <h2>{t("Quota headroom")}</h2>
      <table class="grid">
        <thead>
          <tr>
            <th>{t("Account")}</th>
            <th>{t("State")}</th>
            <th>{t("Quota headroom")}</th>
            <th>{t("Burn rate")}</th>
            <th>{t("Runs out")}</th>
            <th>{t("Resets")}</th>
          </tr>
        </thead>
        <tbody>
          {stats.byCredential.map((c: any) => (
            <tr key={c.credential}>
              <td>{names.get(c.credential) || "#" + c.credential}</td>
              <td><span class={"pill " + c.status}>{t(c.status)}</span></td>
              <td>{num(c.burn.remaining, 1)}</td>
              <td>{num(c.burn.creditsPerHour, 2)} {t("per hour")}</td>
              <td>{c.burn.runsOutAt ? c.burn.runsOutAt.slice(0, 16).replace("T", " ") : "—"}</td>
              <td>{c.burn.resetsAt ? c.burn.resetsAt.slice(0, 10) : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Kpi(props: { label: string; value: string }) {
  return (
    <div class="kpi">
      <div class="muted">{props.label}</div>
      <div class="big">{props.value}</div>
    </div>
  );
}

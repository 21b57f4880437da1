// Small shared pieces: formatting, a modal dialog, a copy button, a toast line.
import { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "./i18n";

export function ago(iso: string | null): string {
  if (!iso) return t("never");
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return until(iso);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function until(iso: string | null): string {
  if (!iso) return "—";
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (s <= 0) return "0s";
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function num(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined) return "—";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return n.toFixed(digits);
}

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  return v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms";
}

export function Modal(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input,select,textarea,button");
    first?.focus();
    const key = (e: KeyboardEvent) => {
      if (e.key === "Escape") props.onClose();
      else if (e.key === "Tab" && ref.current) {
        // Keep the focus inside the dialog (aria-modal): Tab and Shift+Tab wrap around.
        const all = [...ref.current.querySelectorAll<HTMLElement>("a[href],input,select,textarea,button")].filter(
          (el) => !(el as HTMLInputElement).disabled && el.offsetParent !== null,
        );
        if (!all.length) return;
        const [first, last] = [all[0], all[all.length - 1]];
        const inside = ref.current.contains(document.activeElement);
        if (e.shiftKey && (document.activeElement === first || !inside)) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener("keydown", key);
    return () => {
      document.removeEventListener("keydown", key);
      prev?.focus();
    };
  }, []);
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class={props.wide ? "modal wide" : "modal"} role="dialog" aria-modal="true" aria-label={props.title} ref={ref}>
        <header>
          <h2>{props.title}</h2>
          <button class="ghost" aria-label={t("Close")} onClick={props.onClose}>
            ×
          </button>
        </header>
        {props.children}
      </div>
    </div>
  );
}

export function CopyButton(props: { text: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      class="small"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(props.text);
        } catch {
          const ta = document.createElement("textarea");
          ta.value = props.text;
          document.body.appendChild(ta);
          ta.select();
          document.execCommand("copy");
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? t("Copied") : t("Copy")}
    </button>
  );
}

export function Notice(props: { msg: string | null; kind?: "ok" | "error" }) {
  if (!props.msg) return null;
  return (
    <p class={"notice " + (props.kind || "error")} role={props.kind === "ok" ? "status" : "alert"}>
      {props.msg}
    </p>
  );
}

/** Re-render every `ms` milliseconds (for countdowns). */
export function useTick(ms = 1000) {
  const [, set] = useState(0);
  useEffect(() => {
    if (!ms) return;
    const id = setInterval(() => set((n) => n + 1), ms);
    return () => clearInterval(id);
  }, [ms]);
}

// Send one request through the gateway (as the signed-in console) in any of its dialects and
// watch it stream: text, thinking apart, tool calls, then usage, the serving account and TTFT.
import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../api";
import { t } from "../i18n";
import { state } from "../store";
import { ms, Notice } from "../ui";

const DIALECTS = [
  ["anthropic", "Anthropic Messages"],
  ["openai_chat", "OpenAI Chat"],
  ["openai_responses", "OpenAI Responses"],
  ["gemini", "Gemini"],
];

const TOOL = {
  name: "get_weather",
  description: "Current weather for a city",
  schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

function request(dialect: string, model: string, text: string, thinking: boolean, tools: boolean): [string, unknown] {
  if (dialect === "anthropic") {
    const b: any = { model, max_tokens: 2048, stream: true, messages: [{ role: "user", content: text }] };
    if (thinking) b.thinking = { type: "enabled", budget_tokens: 1024 };
    if (tools) b.tools = [{ name: TOOL.name, description: TOOL.description, input_schema: TOOL.schema }];
    return ["/v1/messages", b];
  }
  if (dialect === "openai_chat") {
    const b: any = { model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: text }] };
    if (thinking) b.reasoning_effort = "medium";
    if (tools) b.tools = [{ type: "function", function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.schema } }];
    return ["/v1/chat/completions", b];
  }
  if (dialect === "openai_responses") {
    const b: any = { model, stream: true, input: text, store: false };
    if (thinking) b.reasoning = { effort: "medium", summary: "auto" };
    if (tools) b.tools = [{ type: "function", name: TOOL.name, description: TOOL.description, parameters: TOOL.schema }];
    return ["/v1/responses", b];
  }
  const b: any = { contents: [{ role: "user", parts: [{ text }] }] };
  if (thinking) b.generationConfig = { thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 } };
  if (tools) b.tools = [{ functionDeclarations: [{ name: TOOL.name, description: TOOL.description, parameters: TOOL.schema }] }];
  return [`/v1beta/models/${encodeURIComponent(model)}:streamGenerateContent?alt=sse`, b];
}

interface Out {
  text: string;
  thinking: string;
  tools: { name: string; args: string }[];
  usage: string;
  served: string;
  ttft: number | null;
  total: number | null;
  error: string | null;
}

function take(dialect: string, name: string, d: any, o: Out) {
  if (dialect === "anthropic") {
    if (name === "content_block_start" && d.content_block?.type === "tool_use") o.tools.push({ name: d.content_block.name, args: "" });
    if (name === "content_block_delta") {
      const x = d.delta;
      if (x.type === "text_delta") o.text += x.text;
      else if (x.type === "thinking_delta") o.thinking += x.thinking;
      else if (x.type === "input_json_delta" && o.tools.length) o.tools[o.tools.length - 1].args += x.partial_json;
    }
    if (name === "message_delta" && d.usage) o.usage = `in ${d.usage.input_tokens ?? "?"} · out ${d.usage.output_tokens}`;
    if (name === "error") o.error = d.error?.message || "error";
  } else if (dialect === "openai_chat") {
    const x = d.choices?.[0]?.delta;
    if (x?.content) o.text += x.content;
    if (x?.reasoning_content) o.thinking += x.reasoning_content;
    for (const tc of x?.tool_calls || []) {
      if (tc.function?.name) o.tools.push({ name: tc.function.name, args: "" });
      if (tc.function?.arguments && o.tools.length) o.tools[o.tools.length - 1].args += tc.function.arguments;
    }
    if (d.usage) o.usage = `in ${d.usage.prompt_tokens} · out ${d.usage.completion_tokens}`;
    if (d.error) o.error = d.error.message;
  } else if (dialect === "openai_responses") {
    if (name === "response.output_text.delta") o.text += d.delta;
    if (name === "response.reasoning_summary_text.delta" || name === "response.reasoning_text.delta") o.thinking += d.delta;
    if (name === "response.output_item.added" && d.item?.type === "function_call") o.tools.push({ name: d.item.name, args: "" });
    if (name === "response.function_call_arguments.delta" && o.tools.length) o.tools[o.tools.length - 1].args += d.delta;
    if (name === "response.completed" && d.response?.usage) o.usage = `in ${d.response.usage.input_tokens} · out ${d.response.usage.output_tokens}`;
    if (name === "response.failed" || name === "error") o.error = d.response?.error?.message || d.message || "error";
  } else {
    for (const p of d.candidates?.[0]?.content?.parts || []) {
      if (p.functionCall) o.tools.push({ name: p.functionCall.name, args: JSON.stringify(p.functionCall.args) });
      else if (p.thought) o.thinking += p.text || "";
      else if (p.text) o.text += p.text;
    }
    if (d.usageMetadata) o.usage = `in ${d.usageMetadata.promptTokenCount} · out ${d.usageMetadata.candidatesTokenCount ?? 0}`;
    if (d.error) o.error = d.error.message;
  }
}

export function Playground() {
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState("claude-sonnet-4-6");
  const [dialect, setDialect] = useState("anthropic");
  const [text, setText] = useState("");
  const [thinking, setThinking] = useState(false);
  const [tools, setTools] = useState(false);
  const [out, setOut] = useState<Out | null>(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | null>(null);
  useEffect(() => {
    fetch("/admin/try/v1/models", { credentials: "same-origin" })
      .then((r) => r.json())
      .then((d) => setModels((d.data || []).map((m: any) => m.id)))
      .catch(() => {});
  }, []);

  async function send() {
    const [path, body] = request(dialect, model, text, thinking, tools);
    const o: Out = { text: "", thinking: "", tools: [], usage: "", served: "", ttft: null, total: null, error: null };
    setOut({ ...o });
    setBusy(true);
    const ctl = new AbortController();
    abort.current = ctl;
    const t0 = performance.now();
    try {
      const r = await fetch("/admin/try" + path, {
        method: "POST",
        credentials: "same-origin",
        headers: api.headers({ "content-type": "application/json" }),
        body: JSON.stringify(body),
        signal: ctl.signal,
      });
      const cid = r.headers.get("x-kiro-credential");
      if (cid) {
        const c = state.creds.get(cid);
        o.served = `#${cid}` + (c && (c.name || c.email) ? ` ${c.name || c.email}` : "");
      }
      if (!r.ok || !r.body) {
        const e = await r.json().catch(() => null);
        o.error = e?.error?.message || e?.[0]?.error?.message || `HTTP ${r.status}`;
        setOut({ ...o });
        return;
      }
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let name = "";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data || data === "[DONE]") continue;
          try {
            const d = JSON.parse(data);
            take(dialect, name || d.type || "", d, o);
            if (o.ttft === null && (o.text || o.thinking || o.tools.length)) o.ttft = performance.now() - t0;
          } catch {
            /* a partial or foreign line */
          }
        }
        setOut({ ...o, tools: [...o.tools] });
      }
      o.total = performance.now() - t0;
      setOut({ ...o, tools: [...o.tools] });
    } catch (e) {
      if ((e as Error).name !== "AbortError") o.error = (e as Error).message;
      setOut({ ...o });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <h1>{t("Playground")}</h1>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy && text.trim()) send();
        }}
      >
        <div class="row3">
          <label>
            {t("Model")}
            <input name="model" list="models" value={model} onInput={(e) => setModel(e.currentTarget.value)} />
            <datalist id="models">
              {models.map((m) => (
                <option key={m} value={m} />
              ))}
            </datalist>
          </label>
          <label>
            {t("Dialect")}
            <select name="dialect" value={dialect} onChange={(e) => setDialect(e.currentTarget.value)}>
              {DIALECTS.map(([id, label]) => (
                <option key={id} value={id}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <div class="checks">
            <label class="check">
              <input type="checkbox" checked={thinking} onChange={(e) => setThinking(e.currentTarget.checked)} /> {t("Thinking")}
            </label>
            <label class="check">
              <input type="checkbox" checked={tools} onChange={(e) => setTools(e.currentTarget.checked)} /> {t("Offer a sample tool")}
            </label>
          </div>
        </div>
        <label>
          {t("Message")}
          <textarea
            name="message"
            rows={4}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) (e.currentTarget.form as HTMLFormElement).requestSubmit();
            }}
          />
        </label>
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy || !text.trim()}>
            {t("Send")}
          </button>
          {busy && (
            <button type="button" onClick={() => abort.current?.abort()}>
              {t("Stop")}
            </button>
          )}
        </div>
      </form>
      {out && (
        <div class="answer" aria-live="polite">
          <Notice msg={out.error} />
          {out.thinking && (
            <details open class="thinking">
              <summary>{t("Thinking")}</summary>
              <pre>{out.thinking}</pre>
            </details>
          )}
          <pre class="reply" data-reply>{out.text}</pre>
          {out.tools.length > 0 && (
            <div>
              <h3>{t("Tool calls")}</h3>
              {out.tools.map((x, i) => (
                <pre key={i} class="tool">
                  {x.name}({x.args})
                </pre>
              ))}
            </div>
          )}
          <dl class="facts">
            <dt>{t("Served by")}</dt>
            <dd data-served>{out.served || "—"}</dd>
            <dt>{t("Usage")}</dt>
            <dd>{out.usage || "—"}</dd>
            <dt>{t("Time to first token")}</dt>
            <dd>{ms(out.ttft)}</dd>
            <dt>{t("Latency")}</dt>
            <dd>{ms(out.total)}</dd>
          </dl>
        </div>
      )}
    </section>
  );
}

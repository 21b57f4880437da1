// Copy-ready setup for the common clients, filled with this gateway's address.
import { t } from "../i18n";
import { CopyButton } from "../ui";

export function Connect() {
  const base = location.origin;
  const key = "<client-key>";
  const blocks: [string, string][] = [
    ["Claude Code", `export ANTHROPIC_BASE_URL=${base}\nexport ANTHROPIC_AUTH_TOKEN=${key}\nclaude`],
    ["Codex (~/.codex/config.toml)", `model_provider = "kiro"\nmodel = "claude-sonnet-4-6"\n\n[model_providers.kiro]\nname = "kiro-gateway"\nbase_url = "${base}/v1"\nenv_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n\n# export KIRO_GATEWAY_KEY=${key}`],
    ["Gemini CLI", `export GOOGLE_GEMINI_BASE_URL=${base}\nexport GEMINI_API_KEY=${key}\ngemini -m claude-sonnet-4-6`],
    ["Cline / Roo Code", `API Provider: Anthropic (or OpenAI Compatible)\nBase URL: ${base}   (OpenAI Compatible: ${base}/v1)\nAPI Key: ${key}\nModel: claude-sonnet-4-6`],
    ["Open WebUI", `Settings → Connections → OpenAI API\nURL: ${base}/v1\nKey: ${key}`],
    ["Python (anthropic)", `import anthropic\nclient = anthropic.Anthropic(base_url="${base}", api_key="${key}")\nprint(client.messages.create(model="claude-sonnet-4-6", max_tokens=256,\n      messages=[{"role": "user", "content": "Hello"}]).content[0].text)`],
    ["Python (openai)", `from openai import OpenAI\nclient = OpenAI(base_url="${base}/v1", api_key="${key}")\nprint(client.chat.completions.create(model="claude-sonnet-4-6",\n      messages=[{"role": "user", "content": "Hello"}]).choices[0].message.content)`],
    ["curl", `curl ${base}/v1/messages -H "x-api-key: ${key}" -H "anthropic-version: 2023-06-01" \\\n  -H "content-type: application/json" \\\n  -d '{"model":"claude-sonnet-4-6","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'`],
  ];
  return (
    <section>
      <h1>{t("Connect")}</h1>
      <p>
        {t("Gateway URL")}: <code>{base}</code> · {t("Use a client key from the Client keys page (or the gateway's apiKey).")}
      </p>
      {blocks.map(([title, text]) => (
        <div class="snippet" key={title}>
          <div class="head">
            <h3>{title}</h3>
            <CopyButton text={text} />
          </div>
          <pre>{text}</pre>
        </div>
      ))}
    </section>
  );
}

"""The real Codex CLI, headless, through the gateway's Responses API to the strict fake Kiro.

The CLI is installed by tests/e2e/install_clis.sh (CI runs it). Without it these tests skip,
unless KG_REQUIRE_E2E=1 (set by .ci/run), where a missing CLI is a failure. Codex stays offline:
its provider points at 127.0.0.1, and the features that reach chatgpt.com / github.com at start
(plugins, remote plugins, apps) are off — see tests/fixtures/codex/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODEX = Path(os.environ.get("KG_CODEX_BIN", ROOT / ".e2e/codex/node_modules/.bin/codex"))
PROMPT = "create the marker file"

pytestmark = pytest.mark.e2e

CONFIG = """\
model = "{model}"
model_provider = "kg"
model_reasoning_effort = "high"
model_reasoning_summary = "auto"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.kg]
name = "kiro-gateway"
base_url = "{base_url}/v1"
env_key = "KG_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false
remote_plugin = false
apps = false
"""


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    if not CODEX.exists():
        if os.environ.get("KG_REQUIRE_E2E") == "1":
            pytest.fail(f"Codex CLI not installed at {CODEX}: run tests/e2e/install_clis.sh")
        pytest.skip("Codex CLI not installed (tests/e2e/install_clis.sh)")
    return CODEX


def run_codex(codex_bin: Path, base_url: str, key: str, tmp: Path, prompt: str,
              model: str = "claude-sonnet-4-6") -> tuple[subprocess.CompletedProcess, Path, list[dict]]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(CONFIG.format(model=model, base_url=base_url))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home),
           "KG_KEY": key}
    proc = subprocess.run([str(codex_bin), "exec", "--skip-git-repo-check", "--json", prompt], cwd=work, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, work, events


def kiro_requests(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def test_codex_runs_its_shell_tool_and_the_follow_up_is_accepted(codex_bin, gateway, clean_fake, tmp_path):
    clean_fake.add_script({"match": PROMPT, "times": 1, "steps": [
        {"thinking": "The user wants a file, so I will run a shell command."},
        {"text": "Creating it now."},
        # Codex 0.169's shell tool: exec_command {"cmd": "..."} (see the fixture turn1_request.json)
        {"tool": {"name": "exec_command", "fragments": 3,
                  "input": {"cmd": "echo hello-from-codex > out.txt"}}},
    ]})
    proc, work, events = run_codex(codex_bin, gateway.base_url, gateway.api_key, tmp_path, PROMPT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Codex really ran the command.
    assert (work / "out.txt").read_text().strip() == "hello-from-codex"
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in items if i["type"] == "command_execution"]
    assert len(commands) == 1 and commands[0]["exit_code"] == 0 and "hello-from-codex" in commands[0]["command"]
    # The reasoning summary reached Codex as reasoning, not as answer text.
    assert any(i["type"] == "reasoning" and "run a shell command" in i["text"] for i in items)
    messages = [i["text"] for i in items if i["type"] == "agent_message"]
    assert messages[0] == "Creating it now."
    assert messages[-1].startswith("Received 1 tool result(s)")
    done = [e for e in events if e["type"] == "turn.completed"]
    assert len(done) == 1 and done[0]["usage"]["input_tokens"] > 0
    assert not [e for e in events if e["type"] in ("error", "turn.failed")], events
    # Both turns reached the strict fake and were accepted; the follow-up carries the output.
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 2 and all(r["rule"] is None and r["status"] == 200 for r in reqs), \
        [(r["rule"], r["status"]) for r in reqs]
    first, second = (r["body"]["conversationState"] for r in reqs)
    tools = {t["toolSpecification"]["name"]
             for t in first["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]}
    # Codex's built-in web_search is offered as the gateway's own function (docs/kiro-protocol.md,
    # “How a request with a web search is served”).
    assert {"exec_command", "multi_agent_v1__spawn_agent", "web_search"} <= tools
    results = second["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["status"] == "success" and "Process exited with code 0" in results[0]["content"][0]["text"]
    assistant = second["history"][-1]["assistantResponseMessage"]
    assert assistant["toolUses"][0]["name"] == "exec_command"
    assert assistant["toolUses"][0]["toolUseId"] == results[0]["toolUseId"]
    assert assistant["toolUses"][0]["input"] == {"cmd": "echo hello-from-codex > out.txt"}
    # Codex echoed its reasoning item (store: false): the thinking went back into Kiro's history.
    assert assistant["content"].startswith("<thinking>The user wants a file")
    # Codex's session id became Kiro's conversation id, the same on both turns.
    assert first["conversationId"] == second["conversationId"]


def test_codex_namespaced_tool_call_is_dispatched(codex_bin, gateway, clean_fake, tmp_path):
    """A call to a function of a `namespace` tool goes back as {namespace, name}, which Codex runs."""
    clean_fake.add_script({"match": "close the agent", "times": 1, "steps": [
        {"tool": {"name": "multi_agent_v1__close_agent", "input": {"target": "nope"}}}]})
    proc, _, events = run_codex(codex_bin, gateway.base_url, gateway.api_key, tmp_path, "close the agent")
    assert proc.returncode == 0, proc.stderr[-3000:]
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 2 and all(r["rule"] is None for r in reqs)
    second = reqs[1]["body"]["conversationState"]
    output = second["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    text = output["content"][0]["text"]
    # Codex's own agent tool answered (an unknown name would give "unsupported call: ...").
    assert "invalid agent id nope" in text and "unsupported call" not in text
    assert second["history"][-1]["assistantResponseMessage"]["toolUses"][0]["name"] == "multi_agent_v1__close_agent"


def test_codex_web_search(codex_bin, gateway, clean_fake, tmp_path):
    """Codex declares its built-in web_search: the model calls the gateway's web_search function, the
    gateway searches (Kiro's MCP) and goes on; Codex sees a web_search_call, then the answer."""
    from kiro_gateway.fake.mcp import search_results

    clean_fake.add_script({"match": "find the codex release", "times": 1, "steps": [
        {"text": "Searching."}, {"tool": {"name": "web_search", "input": {"query": "codex cli release"}}}]})
    proc, _, events = run_codex(codex_bin, gateway.base_url, gateway.api_key, tmp_path, "find the codex release")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [e for e in events if e["type"] in ("error", "turn.failed")], events
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    searches = [i for i in items if i["type"] == "web_search"]
    assert [s["query"] for s in searches] == ["codex cli release"], items
    messages = [i["text"] for i in items if i["type"] == "agent_message"]
    assert messages[-1].startswith('Received 1 tool result(s): Web search results for "codex cli release"')
    assert [r["search"] for r in clean_fake.requests if r["path"].endswith("/mcp")] == ["codex cli release"]
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 2 and all(r["rule"] is None and r["status"] == 200 for r in reqs)
    result = reqs[1]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"][
        "toolResults"][0]["content"][0]["text"]
    assert search_results("codex cli release")["results"][0]["url"] in result

"""The real Gemini CLI, headless, through the gateway to the strict fake Kiro.

The CLI is installed by tests/e2e/install_clis.sh (CI runs it). Without it these tests skip,
unless KG_REQUIRE_E2E=1 (set by .ci/run), where a missing CLI is a failure.
What the CLI sends is in tests/fixtures/gemini_cli/ (README.md there has the details).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEMINI = Path(os.environ.get("KG_GEMINI_BIN", ROOT / ".e2e/gemini/node_modules/.bin/gemini"))
# Without selectedType the CLI stops with "Invalid auth method selected."; the rest keeps it offline.
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "ide": {"enabled": False},
}
JSON_INSTRUCTION = "Respond with a single valid JSON value and nothing else"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    if not GEMINI.exists():
        if os.environ.get("KG_REQUIRE_E2E") == "1":
            pytest.fail(f"Gemini CLI not installed at {GEMINI}: run tests/e2e/install_clis.sh")
        pytest.skip("Gemini CLI not installed (tests/e2e/install_clis.sh)")
    return GEMINI


def run_gemini(gemini_bin: Path, base_url: str, key: str, tmp: Path,
               prompt: str) -> tuple[subprocess.CompletedProcess, Path]:
    home, work = tmp / "home", tmp / "work"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    work.mkdir()
    (work / "marker-file.txt").write_text("hello\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_API_KEY": key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "TMPDIR": str(tmp),  # the CLI writes error reports to the temp dir
    }
    # The CLI relaunches itself as a child node process: on a timeout, kill the whole group.
    with subprocess.Popen([str(gemini_bin), "-p", prompt, "--output-format", "json"], cwd=work, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as popen:
        try:
            out, err = popen.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.communicate()
            pytest.fail("Gemini CLI did not finish within 60 s")
    return subprocess.CompletedProcess(popen.args, popen.returncode, out, err), work


def kiro_requests(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def is_json_mode(req: dict) -> bool:
    state = req["body"]["conversationState"]
    return any(JSON_INSTRUCTION in e["userInputMessage"]["content"]
               for e in state.get("history") or () if "userInputMessage" in e)


def test_gemini_cli_runs_a_tool_and_the_follow_up_is_accepted(gemini_bin, gateway, clean_fake, tmp_path):
    # Only the main turn carries Gemini CLI's agent prompt; the router call has its own.
    clean_fake.add_script({"match": "You are Gemini CLI", "times": 1, "steps": [
        {"thinking": "The user wants the listing, so I call list_directory"},
        {"text": "Listing it."},
        {"tool": {"name": "list_directory", "input": {"dir_path": "."}, "fragments": 2}}]})
    proc, work = run_gemini(gemini_bin, gateway.base_url, gateway.api_key, tmp_path, "list the files here")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    # The CLI really ran the tool, and the answer to its result came back.
    assert result["stats"]["tools"]["byName"]["list_directory"]["success"] == 1, result["stats"]["tools"]
    assert result["response"].startswith("Received 1 tool result(s): Directory listing for"), result["response"]
    assert "marker-file.txt" in result["response"]

    reqs = kiro_requests(clean_fake)
    assert [(r["rule"], r["status"]) for r in reqs] == [(None, 200)] * 3
    router, main, follow_up = reqs
    # The JSON-mode router call was answered with valid JSON on the first try: no retries, no
    # fallback (the CLI logs "[Routing] ... failed" when the reply does not fit its schema).
    assert [is_json_mode(r) for r in reqs] == [True, False, False]
    assert "[Routing]" not in proc.stderr, proc.stderr[-2000:]
    assert router["body"]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-haiku-4.5"
    assert main["body"]["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-sonnet-4.6"
    # The follow-up carried the tool result, paired with the call by the id the CLI echoed back.
    state = follow_up["body"]["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert len(results) == 1 and results[0]["status"] == "success"
    assert "marker-file.txt" in results[0]["content"][0]["text"]
    model_turn = state["history"][-1]["assistantResponseMessage"]
    assert model_turn["toolUses"][0]["name"] == "list_directory"
    assert model_turn["toolUses"][0]["toolUseId"] == results[0]["toolUseId"]
    assert model_turn["toolUses"][0]["input"] == {"dir_path": "."}
    # The CLI dropped the thought parts but echoed the signature, which carries the reasoning back.
    assert model_turn["content"].startswith("<thinking>The user wants the listing, so I call list_directory</thinking>")
    assert result["stats"]["models"]["gemini-3.5-flash-lite"]["roles"]["utility_router"]["totalRequests"] == 1



def test_gemini_cli_google_web_search(gemini_bin, gateway, clean_fake, tmp_path):
    """The model calls google_web_search; Gemini CLI asks its sub-request with googleSearch alone,
    which the gateway answers from Kiro's MCP web search with groundingMetadata; the CLI's tool
    result carries the sources it read from that metadata back to the model."""
    from kiro_gateway.fake.mcp import search_results

    clean_fake.add_script({"match": "You are Gemini CLI", "times": 1, "steps": [
        {"text": "Searching."}, {"tool": {"name": "google_web_search", "input": {"query": "gemini cli release"}}}]})
    proc, _ = run_gemini(gemini_bin, gateway.base_url, gateway.api_key, tmp_path, "search the web for the gemini cli")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["stats"]["tools"]["byName"]["google_web_search"]["success"] == 1, result["stats"]["tools"]
    assert [r["search"] for r in clean_fake.requests if r["path"].endswith("/mcp")] == ["gemini cli release"]
    follow_up = kiro_requests(clean_fake)[-1]["body"]["conversationState"]
    text = follow_up["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]["content"][0]["text"]
    hits = search_results("gemini cli release")["results"]
    assert hits[0]["snippet"] in text and all(h["url"] in text for h in hits), text[:2000]
    # The CLI put its citation markers where the grounding supports end: after each entry.
    assert f'{hits[0]["snippet"]}[1]\n2. ' in text, text[:2000]

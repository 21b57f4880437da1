"""The real Claude Code CLI, headless, through the gateway to the strict fake Kiro.

The CLI is installed by tests/e2e/install_clis.sh (CI runs it). Without it these tests skip,
unless KG_REQUIRE_E2E=1 (set by .ci/run), where a missing CLI is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = Path(os.environ.get("KG_CLAUDE_BIN", ROOT / ".e2e/node_modules/.bin/claude"))

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    if not CLAUDE.exists():
        if os.environ.get("KG_REQUIRE_E2E") == "1":
            pytest.fail(f"Claude Code CLI not installed at {CLAUDE}: run tests/e2e/install_clis.sh")
        pytest.skip("Claude Code CLI not installed (tests/e2e/install_clis.sh)")
    return CLAUDE


def run_claude(claude_bin: Path, base_url: str, key: str, tmp: Path, prompt: str,
               *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
    }
    proc = subprocess.run([str(claude_bin), "-p", prompt, "--output-format", "json", *extra],
                          cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=90)
    return proc, work


def kiro_requests(fake) -> list[dict]:
    return [r for r in fake.requests if r["path"] == "/generateAssistantResponse"]


def test_claude_code_runs_a_tool_and_the_follow_up_is_accepted(claude_bin, gateway, clean_fake, tmp_path):
    clean_fake.add_script({"match": "create the marker file", "times": 1, "steps": [
        {"thinking": "The user wants a file; I will use Bash."},
        {"text": "Creating it now."},
        {"tool": {"name": "Bash", "fragments": 3, "input": {
            "command": "echo hello-from-tool > out.txt", "description": "Write the marker file"}}},
    ]})
    proc, work = run_claude(claude_bin, gateway.base_url, gateway.api_key, tmp_path,
                            "create the marker file", "--allowedTools", "Bash")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["is_error"] is False and result["num_turns"] == 2, result
    assert result["permission_denials"] == []
    # Claude Code really ran the tool.
    assert (work / "out.txt").read_text().strip() == "hello-from-tool"
    # The follow-up turn carried the tool result, and the strict fake accepted both turns.
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 2 and all(r["rule"] is None and r["status"] == 200 for r in reqs), \
        [(r["rule"], r["status"]) for r in reqs]
    state = reqs[1]["body"]["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["status"] == "success"
    tool_use = state["history"][-1]["assistantResponseMessage"]
    assert tool_use["toolUses"][0]["name"] == "Bash"
    assert tool_use["toolUses"][0]["toolUseId"] == results[0]["toolUseId"]
    # Thinking came back signed and was echoed into history as Kiro text.
    assert tool_use["content"].startswith("<thinking>The user wants a file")
    assert result["result"].startswith("Received 1 tool result(s)")
    # The client's session id became Kiro's conversation id, the same on both turns.
    assert reqs[0]["body"]["conversationState"]["conversationId"] == state["conversationId"]
    assert result["usage"]["input_tokens"] > 0


def test_claude_code_plain_answer(claude_bin, gateway, clean_fake, tmp_path):
    proc, _ = run_claude(claude_bin, gateway.base_url, gateway.api_key, tmp_path, "say hello")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["result"].startswith("Hello from fake Kiro."), result["result"]
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 1 and reqs[0]["rule"] is None
    assert "say hello" in reqs[0]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["content"]


def test_claude_code_and_a_tool_call_kiro_cut_off(claude_bin, gateway, clean_fake, tmp_path):
    """Kiro cuts a long reply mid tool call (Write loops; docs/kiro-protocol.md, “Stop reason and usage”). The gateway ends the
    reply with max_tokens; Claude Code does not run the broken call and sends its parse error back;
    the gateway tells the model why and how to go on, and keeps only a note of the cut arguments."""
    target = tmp_path / "work" / "big.txt"
    partial = '{"file_path": "%s", "content": "line 1\\nline 2\\n%s' % (target, "more text " * 300)
    clean_fake.add_script({"match": "write the big file", "times": 1, "steps": [
        {"text": "Writing it."}, {"tool": {"name": "Write", "fragments": 8, "input": partial}}]})
    proc, work = run_claude(claude_bin, gateway.base_url, gateway.api_key, tmp_path,
                            "write the big file", "--allowedTools", "Write")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not target.exists()  # the broken call was not run
    reqs = kiro_requests(clean_fake)
    assert len(reqs) == 2 and all(r["rule"] is None and r["status"] == 200 for r in reqs)
    state = reqs[1]["body"]["conversationState"]
    result = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]
    assert result["status"] == "error"
    assert "cut off" in result["content"][0]["text"] and "smaller" in result["content"][0]["text"]
    use = state["history"][-1]["assistantResponseMessage"]["toolUses"][0]
    assert use["name"] == "Write" and use["toolUseId"] == result["toolUseId"]
    assert use["input"] == {"cut_off": f"the arguments were cut off after {len(partial)} characters; "
                                       "the call was not run"}


def test_claude_code_takes_kiros_overflow_as_prompt_too_long(claude_bin, gateway, clean_fake, tmp_path):
    """Kiro's CONTENT_LENGTH_EXCEEDS_THRESHOLD reaches Claude Code worded as Anthropic's own
    "prompt is too long: N tokens > M maximum", which it recognises (terminal_reason
    prompt_too_long) rather than reporting an unknown API error."""
    clean_fake.add_script({"match": "the long one", "times": 1, "status": 400, "body": {
        "message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}})
    proc, _ = run_claude(claude_bin, gateway.base_url, gateway.api_key, tmp_path, "the long one")
    result = json.loads(proc.stdout)
    assert result["is_error"] is True and result["terminal_reason"] == "prompt_too_long", result


def test_claude_code_compacts_on_the_overflow_error_and_its_next_request_is_smaller(claude_bin, clean_fake, tmp_path):
    """overflowPolicy error, four tool rounds in, Kiro says the input is too long: Claude Code gets
    "prompt is too long", summarises the conversation through the gateway (its reactive compact),
    and sends the turn again, smaller — the session goes on without the user doing anything."""
    from support import own_account, start_gateway
    (tmp_path / "gw").mkdir()
    gw = start_gateway(clean_fake, tmp_path / "gw", own_account(clean_fake), overflow_policy="error")
    try:
        for i in range(4):
            clean_fake.add_script({"match": "make the marker" if i == 0 else f"marker-{i - 1}-out", "times": 1, "steps": [
                {"text": f"Step {i}."},
                {"tool": {"name": "Bash", "input": {"command": f"echo marker-{i}-out", "description": f"step {i}"}}}]})
        clean_fake.add_script({"match": "marker-3-out", "times": 1, "status": 400, "body": {
            "message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}})
        proc, _ = run_claude(claude_bin, gw.base_url, gw.api_key, tmp_path, "make the marker file please",
                             "--allowedTools", "Bash")
    finally:
        gw.server.stop()
    result = json.loads(proc.stdout)
    assert result["is_error"] is False, result
    reqs = kiro_requests(clean_fake)
    statuses = [r["status"] for r in reqs]
    assert statuses[:5] == [200, 200, 200, 200, 400] and all(s == 200 for s in statuses[5:]), statuses
    refused = reqs[4]["body"]["conversationState"]
    summary = reqs[5]["body"]["conversationState"]["currentMessage"]["userInputMessage"]["content"]
    assert "TEXT ONLY" in summary and "summary" in summary.lower(), summary[:300]
    again = reqs[-1]["body"]["conversationState"]
    assert len(again["history"]) < len(refused["history"]), (len(again["history"]), len(refused["history"]))
    assert len(json.dumps(again)) < len(json.dumps(refused))


@pytest.fixture
def searching_gateway(fake, tmp_path):
    """A gateway with a branded host (the fake's /runtime), where web search needs the profile ARN."""
    from support import own_account, start_gateway

    (tmp_path / "gw").mkdir()
    gw = start_gateway(fake, tmp_path / "gw", own_account(fake), runtime_base_url=fake.base_url + "/runtime",
                       usage_on_start=False)
    yield gw
    gw.server.stop()


def test_claude_code_web_search(claude_bin, searching_gateway, clean_fake, tmp_path):
    """The model calls WebSearch; Claude Code asks its search-only sub-request (the web_search server
    tool alone), which the gateway answers from Kiro's MCP web_search; the results reach the model."""
    from kiro_gateway.fake.mcp import search_results

    (tmp_path / "cc").mkdir()
    clean_fake.add_script({"match": "look up the kiro release", "times": 1, "steps": [
        {"text": "I'll search for it."},
        {"tool": {"name": "WebSearch", "input": {"query": "kiro release notes"}}},
    ]})
    proc, _ = run_claude(claude_bin, searching_gateway.base_url, searching_gateway.api_key, tmp_path / "cc",
                         "look up the kiro release", "--allowedTools", "WebSearch")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["is_error"] is False and result["num_turns"] == 2, result
    assert result["permission_denials"] == []
    searches = [r for r in clean_fake.requests if r["path"].endswith("/mcp")]
    assert [(s["host"], s["status"], s["search"]) for s in searches] == [("runtime", 200, "kiro release notes")]
    assert searches[0]["body"]["profileArn"]  # the branded host's rule: the ARN at the body's root
    reqs = kiro_requests(clean_fake) + [r for r in clean_fake.requests if r["path"] == "/runtime/generateAssistantResponse"]
    assert len(reqs) == 2 and all(r["rule"] is None and r["status"] == 200 for r in reqs)  # the sub-request: no chat
    state = reqs[1]["body"]["conversationState"]
    use = state["history"][-1]["assistantResponseMessage"]["toolUses"][0]
    assert use["name"] == "WebSearch" and use["input"] == {"query": "kiro release notes"}
    text = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"][0]["content"][0]["text"]
    assert text.startswith('Web search results for query: "kiro release notes"')
    hits = search_results("kiro release notes")["results"]
    assert all(h["url"] in text for h in hits) and hits[0]["snippet"] in text
    assert result["result"].startswith("Received 1 tool result(s): Web search results for query")

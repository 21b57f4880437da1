"""Kill the gateway (SIGKILL, a real subprocess) and start it again: nothing it knew is lost."""

from __future__ import annotations

import anthropic

from gateway_proc import GatewayProcess, write_config
from support import API_KEY

MODEL = "claude-sonnet-4-6"
SESSION = "0f8fad5b-d9cb-469f-a165-7071"  # Claude Code's user_id carries "_session_<uuid>"


def test_cooldowns_counters_log_and_sessions_survive_a_kill(fake, clean_fake, tmp_path):
    a, b = fake.add_account(), fake.add_account()
    creds = [{"refreshToken": x["refresh_token"], "accessToken": x["access_token"], "expiresAt": x["expires_at"],
              "authMethod": "social", "priority": i} for i, x in enumerate((a, b))]
    config = write_config(tmp_path, fake, creds, cooldownSeconds=300, stickySeconds=600)
    gw = GatewayProcess(config).wait_up()
    try:
        client = anthropic.Anthropic(base_url=gw.url, api_key=API_KEY, max_retries=0)
        fake.add_script({"token": a["access_token"], "status": 429, "body": {"message": "Too many requests"}})
        for i in range(3):  # the first is throttled on A and fails over to B; all are served by B
            client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": f"q{i}"}],
                                   metadata={"user_id": f"user_x_account__session_{SESSION}{i}"})
        before = gw.admin("GET", "/credentials").json()["credentials"]
        log_before = gw.admin("GET", "/logs").json()  # reading the log writes what is pending
        assert log_before["total"] == 3
        assert before[0]["status"] == "cooldown" and before[1]["successCount"] == 3
    finally:
        gw.kill()

    gw2 = GatewayProcess(config).wait_up()
    try:
        after = gw2.admin("GET", "/credentials").json()["credentials"]
        for key in ("status", "cooldownUntil", "successCount", "failureCount", "lastUsedAt"):
            assert [c[key] for c in after] == [c[key] for c in before], key
        log_after = gw2.admin("GET", "/logs").json()
        assert log_after["items"] == log_before["items"]
        assert log_after["items"][-1]["retries"] == 1  # the first request's failover, as logged
        # A session keeps its account across the restart, even once A is back (priority would pick A).
        gw2.admin("POST", "/credentials/1/reset")
        fake.clear_requests()
        client = anthropic.Anthropic(base_url=gw2.url, api_key=API_KEY, max_retries=0)
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "again"}],
                               metadata={"user_id": f"user_x_account__session_{SESSION}2"})
        client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "new one"}])
        served = [r["token"] for r in fake.requests if r["path"] == "/generateAssistantResponse"]
        assert served == [b["access_token"], a["access_token"]]
        stats = gw2.admin("GET", "/stats").json()
        assert stats["totals"]["requests"] == 5 and stats["totals"]["retries"] == 1
    finally:
        gw2.stop()

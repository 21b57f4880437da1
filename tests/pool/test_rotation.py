"""Refresh-token rotation: a credential in the README's minimal form keeps working over many
refreshes, in memory and in credentials.json (the write-back must not take the rotation for a
person's edit and roll the token back)."""

from __future__ import annotations

import json

import anthropic
import httpx

from support import start_gateway

ADMIN = "admin-key-rotation"


def test_minimal_credential_survives_rotating_refreshes(fake, clean_fake, tmp_path):
    acct = fake.add_account(rotate_refresh_token=True)
    first = acct["refresh_token"]
    gw = start_gateway(fake, tmp_path, [{"refreshToken": first, "authMethod": "social"}],
                       admin_api_key=ADMIN, usage_on_start=False, background_refresh=False)
    try:
        client = anthropic.Anthropic(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
        seen = {first}
        for _ in range(3):
            msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=32,
                                         messages=[{"role": "user", "content": "hi"}])
            assert msg.content
            on_disk = json.loads(gw.credentials_path.read_text())
            entry = on_disk[0] if isinstance(on_disk, list) else on_disk
            assert entry["refreshToken"] == fake.account(acct["id"])["refresh_token"], "a rotated-away token on disk"
            seen.add(entry["refreshToken"])
            r = httpx.post(f"{gw.base_url}/api/admin/credentials/1/refresh", headers={"x-api-key": ADMIN}, timeout=10)
            assert r.status_code == 200, r.text
        assert len(seen) == 4  # three forced refreshes, each rotated, each kept
        listed = httpx.get(f"{gw.base_url}/api/admin/credentials", headers={"x-api-key": ADMIN}, timeout=10).json()
        assert not listed["credentials"][0].get("disabled")
        assert fake.refresh_count(acct) == 4
    finally:
        gw.server.stop()

"""`kiro-gateway import`: the Kiro IDE's SSO cache and kiro-cli's SQLite store → credentials.json."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import httpx
import pytest

from kiro_gateway.cli import main
from kiro_gateway.pool.credential import format_expiry
from support import start_gateway

ADMIN = "admin-key-for-import-tests"
ARN = "arn:aws:codewhisperer:us-east-1:699475941385:profile/ABCDEF"


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def ide_social(cache: Path, acct: dict) -> None:
    write(cache / "kiro-auth-token.json", {
        "accessToken": acct["access_token"], "refreshToken": acct["refresh_token"],
        "expiresAt": format_expiry(acct["expires_at"]), "authMethod": "social", "provider": "Google",
        "profileArn": ARN, "region": "us-east-1"})


def ide_idc(cache: Path, acct: dict) -> None:
    write(cache / "kiro-auth-token.json", {
        "accessToken": acct["access_token"], "refreshToken": acct["refresh_token"],
        "expiresAt": format_expiry(acct["expires_at"]), "authMethod": "IdC", "provider": "BuilderId",
        "region": "eu-west-1", "profileArn": ARN, "clientIdHash": "0123abcd"})
    write(cache / "0123abcd.json", {"clientId": acct["client_id"], "clientSecret": acct["client_secret"],
                                    "expiresAt": "2030-01-01T00:00:00Z"})


def cli_db(path: Path, social: dict, odic: dict, external: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)")
    rows = {
        "kirocli:social:token": {"access_token": social["access_token"], "refresh_token": social["refresh_token"],
                                 "expires_at": format_expiry(social["expires_at"]), "region": "us-east-1",
                                 "profile_arn": ARN},
        "codewhisperer:odic:token": {"access_token": odic["access_token"], "refresh_token": odic["refresh_token"],
                                     "expires_at": format_expiry(odic["expires_at"]), "region": "us-east-1",
                                     "scopes": ["codewhisperer:completions"]},
        "codewhisperer:odic:device-registration": {"client_id": odic["client_id"],
                                                   "client_secret": odic["client_secret"], "region": "us-east-1"},
        "kirocli:unrelated": {"x": 1},
    }
    if external:
        rows["kirocli:external-idp:token"] = {"access_token": "ext-access", "refresh_token": "e" * 120,
                                              "token_endpoint": "https://login.example.com/token"}
    conn.executemany("INSERT INTO auth_kv VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    return h


def test_cli_import_from_default_places_then_skips_duplicates(fake, clean_fake, home, tmp_path, capsys):
    ide_acct, cli_social, cli_odic = fake.add_account(), fake.add_account(), fake.add_account(auth="idc")
    ide_social(home / ".aws" / "sso" / "cache", ide_acct)
    cli_db(home / ".local" / "share" / "kiro-cli" / "data.sqlite3", cli_social, cli_odic)
    creds = tmp_path / "credentials.json"
    # The file's shape and unknown fields are kept; the existing one gets its id pinned.
    write(creds, {"refreshToken": "x" * 120, "note": "mine"})

    assert main(["import", "--credentials", str(creds)]) == 0
    out = capsys.readouterr().out
    assert "3 added, 0 skipped, 1 error (" in out and "external identity-provider" in out
    for acct in (ide_acct, cli_social, cli_odic):  # no secret printed
        assert acct["refresh_token"] not in out and acct["access_token"] not in out
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    data = json.loads(creds.read_text())
    assert [d["id"] for d in data] == [1, 2, 3, 4] and data[0]["note"] == "mine"
    by_token = {d["refreshToken"]: d for d in data}
    ide = by_token[ide_acct["refresh_token"]]
    assert ide["authMethod"] == "social" and ide["accessToken"] == ide_acct["access_token"]
    assert ide["profileArn"] == ARN and ide["region"] == "us-east-1" and ide["provider"] == "Google"
    odic = by_token[cli_odic["refresh_token"]]
    assert (odic["authMethod"], odic["clientId"], odic["clientSecret"]) == \
           ("idc", cli_odic["client_id"], cli_odic["client_secret"])
    assert by_token[cli_social["refresh_token"]]["authMethod"] == "social"

    assert main(["import", "--credentials", str(creds)]) == 0
    out = capsys.readouterr().out
    assert "0 added, 3 skipped" in out and "duplicate" in out
    assert len(json.loads(creds.read_text())) == 4


def test_imported_credentials_really_refresh(fake, clean_fake, home, tmp_path, capsys):
    """IdC from an explicit --from-ide path (client registration beside it) plus kiro-cli: each
    imported entry refreshes against the fake with the right method and client."""
    idc = fake.add_account(auth="idc")
    social, odic = fake.add_account(), fake.add_account(auth="idc")
    ide_idc(tmp_path / "elsewhere" / "cache", idc)
    db = cli_db(tmp_path / "q" / "data.sqlite3", social, odic, external=False)
    creds = tmp_path / "credentials.json"
    assert main(["import", "--from-ide", str(tmp_path / "elsewhere" / "cache"), "--from-cli", str(db),
                 "--credentials", str(creds)]) == 0
    assert "3 added" in capsys.readouterr().out
    data = json.loads(creds.read_text())
    entry = next(d for d in data if d["refreshToken"] == idc["refresh_token"])
    # The login region (OIDC) and the profile's region (Q API) differ: both are kept.
    assert (entry["authRegion"], entry["apiRegion"], entry["clientId"]) == ("eu-west-1", "us-east-1", idc["client_id"])

    for d in data:  # expire them all so the gateway must refresh each one
        d["expiresAt"] = "2020-01-01T00:00:00Z"
    creds.write_text(json.dumps(data))
    gw = start_gateway(fake, tmp_path, data, admin_api_key=ADMIN, background_refresh=False)
    try:
        for cred_id in (1, 2, 3):
            r = httpx.post(f"{gw.base_url}/api/admin/credentials/{cred_id}/refresh", headers={"x-api-key": ADMIN})
            assert r.status_code == 200, r.text
        assert [fake.refresh_count(a["refresh_token"]) for a in (idc, social, odic)] == [1, 1, 1]
    finally:
        gw.server.stop()


def test_admin_import_endpoint(fake, clean_fake, home, tmp_path):
    acct, social, odic = fake.add_account(), fake.add_account(), fake.add_account(auth="idc")
    ide_social(home / ".aws" / "sso" / "cache", acct)
    cli_dir = home / ".local" / "share" / "kiro-cli"
    db = cli_db(cli_dir / "data.sqlite3", social, odic)
    db = db.rename(cli_dir / "other.sqlite3")  # not in a default place: only found when named
    gw = start_gateway(fake, tmp_path, [], admin_api_key=ADMIN, background_refresh=False)
    url, headers = f"{gw.base_url}/api/admin/credentials/import", {"x-api-key": ADMIN}
    try:
        r = httpx.post(url, headers=headers)  # no body: the default places (HOME)
        assert r.status_code == 200, r.text
        assert [a["authMethod"] for a in r.json()["added"]] == ["social"]
        r = httpx.post(url, headers=headers, json={"fromCli": str(db)})
        body = r.json()
        assert len(body["added"]) == 2 and body["skipped"][0]["reason"].startswith("duplicate")
        assert body["errors"][0]["source"].endswith("#kirocli:external-idp:token")
        text = r.text + httpx.get(f"{gw.base_url}/api/admin/credentials", headers=headers).text
        for a in (acct, social, odic):
            assert a["refresh_token"] not in text and a["access_token"] not in text
        assert odic["client_secret"] not in text
        stored = json.loads(gw.credentials_path.read_text())
        assert [d["id"] for d in stored] == [1, 2, 3]
        assert stat.S_IMODE(os.stat(gw.credentials_path).st_mode) == 0o600
        r = httpx.post(url, headers=headers, json={"fromCli": str(cli_dir / "no-such.sqlite3"), "ide": False})
        assert r.status_code == 200 and r.json()["added"] == []
        bad = cli_dir / "garbage.sqlite3"
        bad.write_bytes(b"not sqlite at all" * 100)
        r = httpx.post(url, headers=headers, json={"fromCli": str(bad), "ide": False})
        assert r.status_code == 200 and r.json()["errors"][0]["message"].startswith("not a readable")
        assert httpx.post(url, headers=headers, json={"ide": "yes"}).status_code == 400
    finally:
        gw.server.stop()


def test_admin_import_reads_only_kiros_login_places_or_an_upload(fake, clean_fake, home, tmp_path):
    outside = tmp_path / "elsewhere"
    ide_social(outside, fake.add_account())
    (home / ".aws" / "sso" / "cache").mkdir(parents=True)
    (home / ".aws" / "sso" / "cache" / "out").symlink_to(outside)  # a link out of the place does not widen it
    gw = start_gateway(fake, tmp_path, [], admin_api_key=ADMIN, background_refresh=False)
    url, headers = f"{gw.base_url}/api/admin/credentials/import", {"x-api-key": ADMIN}
    try:
        for body in ({"fromIde": str(outside)}, {"fromIde": "/etc"}, {"fromIde": str(home / ".aws/sso/cache/out")}, {"fromCli": "/etc/passwd"},
                     {"fromIde": str(home / ".aws" / "sso" / "cache" / ".." / ".." / "..")}):
            r = httpx.post(url, headers=headers, json=body)
            assert r.status_code == 400 and "must lie inside" in r.json()["error"]["message"], (body, r.text)
        assert gw.credentials_path.read_text().strip() == "[]"
        acct = fake.add_account()
        token = {"refreshToken": acct["refresh_token"], "accessToken": acct["access_token"],
                 "expiresAt": format_expiry(acct["expires_at"]), "authMethod": "social", "provider": "Github"}
        r = httpx.post(url, headers=headers, json={"ideToken": token})
        assert r.status_code == 200 and [a["authMethod"] for a in r.json()["added"]] == ["social"], r.text
        idc = fake.add_account(auth="idc")
        r = httpx.post(url, headers=headers, json={"ideToken": {"refreshToken": idc["refresh_token"],
                                                               "authMethod": "IdC", "clientIdHash": "h"}})
        assert r.json()["added"] == [] and "registration" in r.json()["errors"][0]["message"]
        r = httpx.post(url, headers=headers, json={
            "ideToken": {"refreshToken": idc["refresh_token"], "authMethod": "IdC", "clientIdHash": "h"},
            "ideRegistration": {"clientId": idc["client_id"], "clientSecret": idc["client_secret"]}})
        assert [a["authMethod"] for a in r.json()["added"]] == ["idc"] and idc["client_secret"] not in r.text
    finally:
        gw.server.stop()


def test_idc_without_registration_is_reported_not_imported(home, tmp_path, capsys):
    cache = home / ".aws" / "sso" / "cache"
    write(cache / "kiro-auth-token.json", {"refreshToken": "r" * 120, "authMethod": "IdC", "clientIdHash": "missing",
                                           "expiresAt": format_expiry(time.time() + 3600)})
    creds = tmp_path / "credentials.json"
    assert main(["import", "--from-ide", str(cache), "--credentials", str(creds)]) == 1
    assert "missing.json is missing" in capsys.readouterr().out
    assert not creds.exists()

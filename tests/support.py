"""Test support: a fake Kiro and a gateway, each on a real socket on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvicorn

from kiro_gateway.app import create_app
from kiro_gateway.config import Settings
from kiro_gateway.fake.server import FakeKiro
from kiro_gateway.web.readgate import GatedHttpToolsProtocol

API_KEY = "test-gateway-key"
REFRESH_TOKEN = "r" * 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving an ASGI app in a background thread (its own event loop), through the HTTP
    protocol `kiro-gateway serve` uses (web/readgate.py)."""

    def __init__(self, app, port: int | None = None, **config) -> None:
        self.port = port or free_port()
        self.config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                     **{"lifespan": "on", "timeout_keep_alive": 30, "http": GatedHttpToolsProtocol,
                                        **config})
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Gateway:
    server: ServerThread
    fake: FakeKiro
    settings: Settings
    credentials_path: Path
    api_key: str = API_KEY

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def app(self):
        return self.server.config.app


def start_gateway(fake: FakeKiro, tmp: Path, credentials: list[dict] | dict | None = None,
                  **overrides) -> Gateway:
    creds_path = tmp / "credentials.json"
    if credentials is None:
        credentials = [{"refreshToken": REFRESH_TOKEN, "authMethod": "social"}]
    creds_path.write_bytes(orjson.dumps(credentials, option=orjson.OPT_INDENT_2))
    creds_path.chmod(0o600)
    settings = Settings(
        api_key=overrides.pop("api_key", API_KEY),
        api_base_url=fake.base_url,
        auth_base_url=fake.base_url,
        oidc_base_url=fake.base_url,
        ping_interval=overrides.pop("ping_interval", 5.0),
        first_token_timeout=overrides.pop("first_token_timeout", 10.0),
        **overrides,
    )
    server = ServerThread(create_app(settings, creds_path)).start()
    return Gateway(server, fake, settings, creds_path)


def own_account(fake: FakeKiro) -> list[dict]:
    """Credentials for a fresh fake account, so a test's refreshes cannot touch other gateways."""
    acct = fake.add_account()
    return [{"refreshToken": acct["refresh_token"], "authMethod": "social"}]


def credential_for(kind: str, acct: dict) -> dict:
    """A credentials.json entry for a fake account of `kind` (api_key | social | idc)."""
    if kind == "api_key":
        return {"kiroApiKey": acct["access_token"]}
    if kind == "social":
        return {"refreshToken": acct["refresh_token"], "authMethod": "social"}
    return {"refreshToken": acct["refresh_token"], "clientId": acct["client_id"],
            "clientSecret": acct["client_secret"], "authMethod": "IdC"}

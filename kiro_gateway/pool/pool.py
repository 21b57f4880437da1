"""The credential pool: which account serves a request, with a fresh token.

This first version picks the best enabled credential by priority, refreshes its token when it is
due (one refresh at a time per credential, however many requests wait for it) and writes the new
tokens back to the file atomically, in the file's own shape.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..config import Settings
from ..conversation import GatewayError
from ..files import read_json, write_json_atomic
from ..kiro.auth import RefreshError, refresh_idc, refresh_social
from ..kiro.client import KiroHttp
from ..kiro.identity import machine_id_for
from .credential import Credential

__all__ = ["CredentialPool", "Lease", "load_credentials"]


@dataclass(slots=True)
class Lease:
    credential: Credential
    token: str
    machine_id: str
    api_base: str
    proxy: str | None
    api_key_auth: bool


def load_credentials(path: Path) -> tuple[list[Credential], bool]:
    """(credentials, single_object_shape). A missing file is an empty pool."""
    if not path.exists():
        return [], False
    try:
        data = read_json(path)
    except (OSError, orjson.JSONDecodeError) as e:
        raise GatewayError("internal", f"{path}: cannot read credentials ({e})") from e
    if isinstance(data, dict):
        return [Credential(data, 0)], True
    if isinstance(data, list):
        return [Credential(d, i) for i, d in enumerate(data) if isinstance(d, dict)], False
    raise GatewayError("internal", f"{path}: credentials must be an object or an array")


class CredentialPool:
    def __init__(self, settings: Settings, path: Path | None, http: KiroHttp) -> None:
        self.settings = settings
        self.path = path
        self.http = http
        self.credentials, self.single = load_credentials(path) if path else ([], False)
        self._locks: dict[str, asyncio.Lock] = {}
        self._write_lock = asyncio.Lock()
        self.refresh_count = 0

    def candidates(self) -> list[Credential]:
        live = [c for c in self.credentials if not c.disabled and (c.refresh_token or c.access_token or c.api_key)]
        return sorted(live, key=lambda c: (c.priority, c.index))

    async def acquire(self, model_id: str | None = None) -> Lease:
        cands = self.candidates()
        if not cands:
            raise GatewayError("upstream", "No usable Kiro credential is configured: add one to "
                               f"{self.path or 'credentials.json'} (or run `kiro-gateway import`).", 503)
        last: Exception | None = None
        for cred in cands:
            try:
                token = await self.token_for(cred)
            except RefreshError as e:
                last = e
                continue
            return self._lease(cred, token)
        raise GatewayError("authentication", f"No Kiro credential could be refreshed: {last}", 401)

    def _lease(self, cred: Credential, token: str) -> Lease:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        proxy = cred.raw.get("proxyUrl") or s.proxy_url
        if proxy == "direct":
            proxy = None
        return Lease(cred, token, mid, s.url("api_base_url", cred.region(s.region)), proxy,
                     cred.auth_method == "api_key")

    async def token_for(self, cred: Credential, force: bool = False) -> str:
        """A bearer token for `cred`, refreshed first when due (or when `force`d)."""
        margin = self.settings.refresh_before
        if not force and (token := cred.usable_token(margin=margin)):
            return token
        seen = cred.access_token
        async with self._locks.setdefault(cred.id, asyncio.Lock()):
            # Single flight: whoever waited on the lock uses the token the first one fetched.
            if cred.access_token != seen and (token := cred.usable_token(margin=0)):
                return token
            if not force and (token := cred.usable_token(margin=margin)):
                return token
            if not cred.refresh_token:
                if cred.access_token and not force:
                    return cred.access_token  # nothing to refresh with: try what we have
                raise RefreshError("credential has no refresh token", permanent=True)
            await self._refresh(cred)
            return cred.access_token or ""

    async def _refresh(self, cred: Credential) -> None:
        s = self.settings
        mid = machine_id_for(cred.machine_id or s.machine_id, cred.refresh_token, cred.api_key, cred.id)
        region = cred.auth_region(s.region)
        proxy = cred.raw.get("proxyUrl") or s.proxy_url
        proxy = None if proxy == "direct" else proxy
        self.refresh_count += 1
        if cred.auth_method == "idc":
            res = await refresh_idc(self.http.session, s.url("oidc_base_url", region), cred.refresh_token or "",
                                    cred.client_id or "", cred.client_secret or "", mid, proxy)
        else:
            res = await refresh_social(self.http.session, s.url("auth_base_url", region),
                                       cred.refresh_token or "", s.kiro_version, mid, proxy)
        cred.apply_refresh(res.access_token, res.refresh_token, res.expires_in, res.profile_arn)
        await self.save()

    async def save(self) -> None:
        if not self.path:
            return
        data: Any = self.credentials[0].raw if self.single and self.credentials else [c.raw for c in self.credentials]
        async with self._write_lock:
            await asyncio.to_thread(write_json_atomic, self.path, data)

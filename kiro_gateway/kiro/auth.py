"""Token refresh against Kiro's auth services (docs/kiro-protocol.md, “Social refresh” / “IdC refresh”)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from .identity import idc_refresh_headers, refresh_headers

__all__ = ["RefreshResult", "RefreshError", "refresh_social", "refresh_idc"]


@dataclass(slots=True)
class RefreshResult:
    access_token: str
    refresh_token: str | None
    expires_in: float
    profile_arn: str | None = None


class RefreshError(Exception):
    def __init__(self, message: str, permanent: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent  # the refresh token itself is dead (invalid_grant)
        self.status = status


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, Any],
                via: dict[str, Any] | None, timeout: float = 30.0) -> dict[str, Any]:
    # The shared session leaves bodies compressed (chat streams are relayed raw); JSON is not.
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers, auto_decompress=True,
                                timeout=aiohttp.ClientTimeout(total=timeout), **(via or {})) as resp:
            raw = await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError) as e:
        raise RefreshError(f"refresh request failed: {type(e).__name__}") from e
    text = raw.decode("utf-8", "replace")
    if status != 200:
        permanent = status in (400, 401) and "invalid_grant" in text
        raise RefreshError(f"refresh answered {status}: {text[:300]}", permanent, status)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RefreshError("refresh answer is not JSON") from e
    if not isinstance(data, dict):
        raise RefreshError("refresh answer is not a JSON object")
    return data


def _result(data: dict[str, Any]) -> RefreshResult:
    token = data.get("accessToken") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise RefreshError("refresh answer has no accessToken")
    expires = data.get("expiresIn", data.get("expires_in", 3600))
    try:
        expires_in = float(expires)
    except (TypeError, ValueError):
        expires_in = 3600.0
    return RefreshResult(token, data.get("refreshToken") or data.get("refresh_token"), expires_in,
                         data.get("profileArn"))


async def refresh_social(session: aiohttp.ClientSession, auth_base: str, refresh_token: str,
                         kiro_version: str, machine_id: str, via: dict[str, Any] | None = None,
                         timeout: float = 30.0) -> RefreshResult:
    """`via`: request keywords from KiroHttp.via() (the proxy, if any); `timeout`: the whole call's."""
    host = urlsplit(auth_base).netloc
    data = await _post(session, auth_base + "/refreshToken", {"refreshToken": refresh_token},
                       refresh_headers(kiro_version, machine_id, host), via, timeout)
    return _result(data)


async def refresh_idc(session: aiohttp.ClientSession, oidc_base: str, refresh_token: str,
                      client_id: str, client_secret: str, machine_id: str,
                      via: dict[str, Any] | None = None, timeout: float = 30.0) -> RefreshResult:
    host = urlsplit(oidc_base).netloc
    body = {"clientId": client_id, "clientSecret": client_secret, "refreshToken": refresh_token,
            "grantType": "refresh_token"}
    data = await _post(session, oidc_base + "/token", body, idc_refresh_headers(machine_id, host), via, timeout)
    return _result(data)

"""AWS SSO OIDC calls of the device-code login: RegisterClient, StartDeviceAuthorization, CreateToken
(JSON bodies, camelCase, as the refresh call uses; docs/login.md)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..kiro.identity import idc_refresh_headers

__all__ = ["OidcError", "LoginHttpError", "DeviceAuthorization", "Client", "register_client",
           "start_device_authorization", "create_token", "post_json", "BUILDER_ID_START_URL", "DEVICE_GRANT",
           "SCOPES"]

BUILDER_ID_START_URL = "https://view.awsapps.com/start"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPES = ["codewhisperer:completions", "codewhisperer:analysis", "codewhisperer:conversations"]
CLIENT_NAME = "Kiro IDE"


class LoginHttpError(Exception):
    """The service could not be reached, or answered something that is not its JSON."""


class OidcError(Exception):
    """An OAuth error answer: `code` is its `error` field (authorization_pending, slow_down…)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.status = status
        self.code = code
        self.description = description


@dataclass(slots=True, frozen=True)
class Client:
    client_id: str
    client_secret: str


@dataclass(slots=True, frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float
    interval: float


async def post_json(session: aiohttp.ClientSession, url: str, body: dict, headers: dict,
                    via: dict | None) -> dict:
    """POST JSON, return the JSON object answered; OidcError for an error answer."""
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers, auto_decompress=True,
                                allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30),
                                **(via or {})) as resp:
            raw, status = await resp.read(), resp.status
    except (TimeoutError, aiohttp.ClientError) as e:
        raise LoginHttpError(f"{urlsplit(url).netloc} could not be reached ({type(e).__name__})") from None
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    if status == 200 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        desc = data.get("error_description")
        raise OidcError(status, data["error"], desc if isinstance(desc, str) else "")
    message = data.get("message") if isinstance(data, dict) else None
    raise LoginHttpError(f"{urlsplit(url).netloc} answered {status}" + (f": {str(message)[:200]}" if message else ""))


def _headers(base: str, machine_id: str) -> dict[str, str]:
    return idc_refresh_headers(machine_id, urlsplit(base).netloc)


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise LoginHttpError(f"the answer has no {key}")
    return value


async def register_client(session, base: str, start_url: str, machine_id: str, via: dict | None) -> Client:
    body = {"clientName": CLIENT_NAME, "clientType": "public", "scopes": SCOPES,
            "grantTypes": [DEVICE_GRANT, "refresh_token"], "issuerUrl": start_url}
    data = await post_json(session, base + "/client/register", body, _headers(base, machine_id), via)
    return Client(_text(data, "clientId"), _text(data, "clientSecret"))


async def start_device_authorization(session, base: str, client: Client, start_url: str, machine_id: str,
                                     via: dict | None) -> DeviceAuthorization:
    body = {"clientId": client.client_id, "clientSecret": client.client_secret, "startUrl": start_url}
    data = await post_json(session, base + "/device_authorization", body, _headers(base, machine_id), via)
    uri = _text(data, "verificationUri")
    return DeviceAuthorization(_text(data, "deviceCode"), _text(data, "userCode"), uri,
                               data.get("verificationUriComplete") or uri,
                               float(data.get("expiresIn") or 600), float(data.get("interval") or 5))


async def create_token(session, base: str, client: Client, device_code: str, machine_id: str,
                       via: dict | None) -> dict:
    """The tokens once approved; OidcError (authorization_pending, slow_down…) until then."""
    body = {"clientId": client.client_id, "clientSecret": client.client_secret, "grantType": DEVICE_GRANT,
            "deviceCode": device_code}
    data = await post_json(session, base + "/token", body, _headers(base, machine_id), via)
    _text(data, "accessToken")
    _text(data, "refreshToken")
    return data

"""Social sign-in (Google, GitHub) through Kiro's auth service: PKCE S256, a loopback redirect, and
the code exchange (docs/login.md)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from ..kiro.identity import refresh_headers
from .oidc import LoginHttpError, post_json

__all__ = ["PROVIDERS", "new_pkce", "authorize_url", "redirect_uri", "parse_redirect", "exchange_code",
           "CALLBACK_PATH"]

PROVIDERS = {"google": "Google", "github": "Github"}  # our name → the service's idp value
CALLBACK_PATH = "/oauth/callback"


def new_pkce() -> tuple[str, str]:
    """(code_verifier, its S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def redirect_uri(port: int) -> str:
    return f"http://localhost:{port}{CALLBACK_PATH}"


def authorize_url(auth_base: str, provider: str, redirect: str, challenge: str, state: str) -> str:
    query = {"idp": PROVIDERS[provider], "redirect_uri": redirect, "code_challenge": challenge,
             "code_challenge_method": "S256", "state": state, "prompt": "select_account"}
    return f"{auth_base}/login?{urlencode(query)}"


def parse_redirect(url: str) -> tuple[str | None, str | None, str | None]:
    """(code, state, error) from the URL the browser was sent back to; ValueError if it has none."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("not a URL") from None
    query = parse_qs(parts.query or (text[1:] if text.startswith("?") else ""))
    first = {k: v[0] for k, v in query.items() if v}
    code, state, error = first.get("code"), first.get("state"), first.get("error")
    if not state or not (code or error):
        raise ValueError("the URL has no code and state: paste the whole address the browser ended on")
    return code, state, error


async def exchange_code(session, auth_base: str, code: str, verifier: str, redirect: str, kiro_version: str,
                        machine_id: str, via: dict | None) -> dict:
    """POST /oauth/token → accessToken, refreshToken, profileArn, expiresIn."""
    body = {"code": code, "code_verifier": verifier, "redirect_uri": redirect}
    headers = refresh_headers(kiro_version, machine_id, urlsplit(auth_base).netloc)
    data = await post_json(session, auth_base + "/oauth/token", body, headers, via)
    for key in ("accessToken", "refreshToken"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise LoginHttpError(f"the token exchange answered no {key}")
    return data

"""Request and response bodies made fit for the request log: no secrets, no images, bounded.

Only used when `logBodies` is on, and only by the log's writer (never in the request path).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

__all__ = ["redact_body", "redact_query", "SecretQueryFilter", "MAX_BODY_CHARS"]

MAX_BODY_CHARS = 65_536
MAX_DEPTH = 64  # deeper values are replaced by a note: the log stays serialisable at any depth
_SECRET_KEYS = {"apikey", "api_key", "x-api-key", "x-goog-api-key", "authorization", "password", "secret",
                "clientsecret", "client_secret", "accesstoken", "access_token", "refreshtoken", "refresh_token",
                "token", "id_token", "idtoken", "kiroapikey"}
_IMAGE_KEYS = {"inlinedata", "inline_data"}
# Bearer values and key-shaped strings (OpenAI, Anthropic, this gateway, Kiro's tokens).
_TOKEN = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{12,}|\b(?:sk-|kg-|kgk_|aoa|aor|ksk_)[A-Za-z0-9._-]{16,}")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_-]{512,}$")


def redact_body(raw: bytes | None, secrets: tuple[str, ...] = ()) -> Any:
    """A JSON body with secrets and images replaced; text that is not JSON is redacted as text."""
    if not raw:
        return None
    try:
        value = _walk(orjson.loads(raw), secrets, 0)
    except orjson.JSONDecodeError:
        value = _text(raw.decode("utf-8", "replace"), secrets)
    text = orjson.dumps(value).decode()
    if len(text) > MAX_BODY_CHARS:
        return {"truncated": True, "chars": len(text), "head": text[:MAX_BODY_CHARS]}
    return value


def _walk(v: Any, secrets: tuple[str, ...], depth: int) -> Any:
    if isinstance(v, (dict, list)) and depth >= MAX_DEPTH:
        return f"[nested deeper than {MAX_DEPTH} levels: not logged]"
    depth += 1
    if isinstance(v, dict):
        out: dict[Any, Any] = {}
        for k, x in v.items():
            lk = k.lower() if isinstance(k, str) else k
            if lk in _SECRET_KEYS and isinstance(x, str):
                out[k] = "[redacted]"
            elif lk in _IMAGE_KEYS and isinstance(x, dict):
                out[k] = {**{kk: vv for kk, vv in x.items() if kk != "data"}, "data": "[image redacted]"}
            elif k == "data" and v.get("type") == "base64" and isinstance(x, str):
                out[k] = "[image redacted]"
            else:
                out[k] = _walk(x, secrets, depth)
        return out
    if isinstance(v, list):
        return [_walk(x, secrets, depth) for x in v]
    if isinstance(v, str):
        return _text(v, secrets)
    return v


def _text(s: str, secrets: tuple[str, ...]) -> str:
    if s.startswith("data:") and ";base64," in s[:100]:
        return "[image redacted]"
    if _BASE64.match(s):
        return f"[binary redacted, {len(s)} chars]"
    for secret in secrets:
        if secret and secret in s:
            s = s.replace(secret, "[redacted]")
    return _TOKEN.sub(lambda m: (m.group(1) or "") + "[redacted]", s)


_QUERY_SECRET = re.compile(r"(?i)([?&](?:key|api_key|apikey|token|access_token|secret|password)=)[^&#\s]*")


def redact_query(url: str) -> str:
    """A URL or path with the values of key-like query parameters (Gemini's `?key=`) replaced."""
    return _QUERY_SECRET.sub(r"\1[redacted]", url)


class SecretQueryFilter(logging.Filter):
    """For uvicorn's access log: its records carry the full path with the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "=" in a for a in record.args):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        return True

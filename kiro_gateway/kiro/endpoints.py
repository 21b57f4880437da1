"""Kiro's two API hosts and the profile host: base URLs and profile discovery.

docs/kiro-protocol.md ("Hosts and profile ARNs") says what each host wants: the branded host
(`runtime.{region}.kiro.dev`) needs a profile ARN on every call; the legacy host
(`q.{region}.amazonaws.com`) serves an account without one (AWS Builder ID has none). Both take
the path form of an operation, which is what the gateway sends.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson
import yarl

from ..core.conversation import GatewayError
from .client import KiroHttp, Proxy, upstream_error
from .identity import usage_headers

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

__all__ = ["LEGACY_DEFAULT", "RUNTIME_DEFAULT", "PROFILE_REGIONS", "base_url", "needs_profile", "discover_profile", "list_models"]

LEGACY_DEFAULT = "https://q.{region}.amazonaws.com"
RUNTIME_DEFAULT = "https://runtime.{region}.kiro.dev"
PROFILES_DEFAULT = "https://codewhisperer.{region}.amazonaws.com"
PROFILE_REGIONS = ("us-east-1", "eu-central-1")  # Q profiles live only here, whatever the login region
PROFILE_TARGET = "AmazonCodeWhispererService.ListAvailableProfiles"


def base_url(settings: Settings, host: str, region: str) -> str | None:
    """The base URL of `host` ("runtime" | "legacy") in `region`; None if no branded host is set."""
    if host == "legacy":
        return settings.url("api_base_url", region)
    template = settings.runtime_base_url
    if template is None:
        if settings.api_base_url.rstrip("/") != LEGACY_DEFAULT:
            return None  # apiBaseUrl points at a relay or the fake: no branded host behind it
        template = RUNTIME_DEFAULT
    return template.replace("{region}", region)


def needs_profile(status: int, body: str) -> bool:
    """Kiro's 400 "profileArn is required": this host will not serve the account without one."""
    return status == 400 and "profileArn is required" in body


async def discover_profile(http: KiroHttp, settings: Settings, token: str, kiro_version: str, machine_id: str,
                           api_key_auth: bool = False, proxy: Proxy | None = None) -> tuple[str | None, bool]:
    """(the account's profile ARN or None, whether the answer is final).

    Asks ListAvailableProfiles in each profile region. Builder ID is refused there (403): final,
    no profile. "No profile" is final only when every region answered; a region that could not
    be asked (a host that does not resolve, a timeout, a 5xx) means: ask again later.
    """
    if settings.profiles_base_url is not None:
        templates: tuple[str, ...] = (settings.profiles_base_url,)
    elif settings.api_base_url.rstrip("/") != LEGACY_DEFAULT:
        return None, False  # a relay or the fake without a profile host: nothing to ask
    else:  # the profile host does not resolve in every region: the regional API host then
        templates = (PROFILES_DEFAULT, LEGACY_DEFAULT)
    answered = 0
    for region in PROFILE_REGIONS:
        for template in templates:
            outcome = await _ask_profiles(http, template.replace("{region}", region) + "/", token,
                                          kiro_version, machine_id, api_key_auth, proxy)
            if outcome is None:
                continue  # not reachable: the next host for this region
            if outcome == "builder-id":
                return None, True
            answered += 1
            if outcome:
                return outcome, True
            break
    return None, answered == len(PROFILE_REGIONS)


async def _ask_profiles(http: KiroHttp, url: str, token: str, kiro_version: str, machine_id: str,
                        api_key_auth: bool, proxy: Proxy | None) -> str | None:
    """The first profile ARN listed at `url`; "" when it answered with none; "builder-id"; None
    when it could not be asked."""
    headers = usage_headers(token, kiro_version, machine_id, url.split("/")[2], api_key_auth)
    headers["content-type"] = "application/x-amz-json-1.0"
    headers["x-amz-target"] = PROFILE_TARGET
    session, options = http.via(proxy)
    try:
        async with session.post(url, data=b"{}", headers=headers, timeout=aiohttp.ClientTimeout(total=20),
                                auto_decompress=True, **options) as resp:
            raw, status = await resp.read(), resp.status
    except (TimeoutError, aiohttp.ClientError):
        return None  # e.g. a regional host that does not resolve
    if status == 403 and b"Builder ID" in raw:
        return "builder-id"
    if status in (400, 404):
        return ""  # no Q profile endpoint there: nothing in this region
    if status != 200:
        return None
    try:
        profiles = orjson.loads(raw).get("profiles") or []
    except (orjson.JSONDecodeError, AttributeError):
        return None
    for p in profiles if isinstance(profiles, list) else ():
        arn = p.get("arn") if isinstance(p, dict) else None
        if isinstance(arn, str) and arn.startswith("arn:"):
            return arn
    return ""


async def list_models(http: KiroHttp, base: str, token: str, kiro_version: str, machine_id: str,
                      profile_arn: str | None = None, api_key_auth: bool = False,
                      proxy: Proxy | None = None) -> dict[str, tuple[int, int]]:
    """ListAvailableModels on `base`: Kiro model id -> (maxInputTokens, maxOutputTokens) for
    this account. Raises UpstreamStatus / GatewayError when Kiro does not answer with a list."""
    params = {"origin": "AI_EDITOR"}
    if profile_arn:
        params["profileArn"] = profile_arn
    headers = usage_headers(token, kiro_version, machine_id, urlsplit(base).netloc, api_key_auth)
    out: dict[str, tuple[int, int]] = {}
    for _ in range(MODEL_PAGES):  # Kiro pages the list: follow nextToken to the end, bounded
        next_token = await _model_page(http, base, params, headers, proxy, out)
        if not next_token:
            return out
        params["nextToken"] = next_token
    log.warning("ListAvailableModels still had pages after %d; using the first %d models", MODEL_PAGES, len(out))
    return out


MODEL_PAGES = 20


async def _model_page(http: KiroHttp, base: str, params: dict[str, Any], headers: dict[str, Any], proxy: Proxy | None,
                      out: dict[str, tuple[int, int]]) -> str | None:
    """Fetch one page of ListAvailableModels into `out`; its nextToken, if any."""
    url = yarl.URL(f"{base}/ListAvailableModels?{urlencode(params, quote_via=quote)}", encoded=True)
    session, options = http.via(proxy)
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=20),
                               auto_decompress=True, **options) as resp:
            raw, status = await resp.read(), resp.status
    except (TimeoutError, aiohttp.ClientError) as e:
        raise GatewayError("upstream", f"Could not reach Kiro for its model list: {type(e).__name__}") from e
    if status != 200:
        raise upstream_error(status, raw.decode("utf-8", "replace"))
    try:
        entries = orjson.loads(raw).get("models")
    except (orjson.JSONDecodeError, AttributeError):
        entries = None
    if not isinstance(entries, list):
        raise GatewayError("upstream", "Kiro's model list is not a list.")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("modelId"), str):
            continue
        limits: dict[str, Any] = entry["tokenLimits"] if isinstance(entry.get("tokenLimits"), dict) else {}
        out[entry["modelId"]] = (_int(limits.get("maxInputTokens")), _int(limits.get("maxOutputTokens")))
    token = orjson.loads(raw).get("nextToken")
    return token if isinstance(token, str) and token else None


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

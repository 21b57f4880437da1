"""Admin endpoints for the console's Settings page and credential names.

GET/PUT /config/settings read and change the live routing settings (load balancing, cooldown,
retries, stickiness, pacing, proxy, model map, web search). A change is validated as a whole
Settings, applied to the running gateway at once, and saved to config.json atomically (0600). The
proxy password is write-only: answers say only whether one is set. PUT /credentials/{id}/name sets
a credential's human label, kept in credentials.json.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from ..config import Settings
from ..util.files import read_json, write_json_atomic
from ..kiro.client import Proxy, ProxyError
from ..kiro.models import UnknownModel
from ..pool.credential import Credential
from .common import AdminError, _body
from .services import AdminServices

__all__ = ["SettingsApi", "SettingsView", "SettingsUpdate", "SetName", "EDITABLE"]

# camelCase key in config.json -> Settings attribute
EDITABLE = {"loadBalancing": "load_balancing", "cooldownSeconds": "cooldown_seconds",
            "unhealthySeconds": "unhealthy_seconds", "failureLimit": "failure_limit", "maxAttempts": "max_attempts",
            "maxAttemptsPerCredential": "max_attempts_per_credential", "stickySeconds": "sticky_seconds",
            "maxConcurrentPerCredential": "max_concurrent_per_credential",
            "maxRpmPerCredential": "max_rpm_per_credential", "queueTimeout": "queue_timeout",
            "proxyUrl": "proxy_url", "proxyUsername": "proxy_username", "proxyPassword": "proxy_password",
            "modelMap": "model_map", "defaultModel": "default_model", "logBodies": "log_bodies",
            "modelFallbacks": "model_fallbacks", "minIntervalPerCredential": "min_interval_per_credential",
            "pacingJitter": "pacing_jitter", "overflowPolicy": "overflow_policy",
            "webSearch": "web_search"}


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loadBalancing: Literal["priority", "balanced", "round_robin", "random"] | None = None
    cooldownSeconds: float | None = Field(None, ge=0)
    unhealthySeconds: float | None = Field(None, ge=0)
    failureLimit: int | None = Field(None, ge=1)
    maxAttempts: int | None = Field(None, ge=1)
    maxAttemptsPerCredential: int | None = Field(None, ge=1)
    stickySeconds: float | None = Field(None, ge=0)
    maxConcurrentPerCredential: int | None = Field(None, ge=0)
    maxRpmPerCredential: int | None = Field(None, ge=0)
    queueTimeout: float | None = Field(None, ge=0)
    proxyUrl: str | None = Field(None, description="http://, https:// or socks5:// URL; '' for none")
    proxyUsername: str | None = None
    proxyPassword: str | None = Field(None, description="write-only; '' clears it")
    modelMap: dict[str, str] | None = None
    defaultModel: str | None = None
    logBodies: bool | None = None
    modelFallbacks: dict[str, list[str]] | None = Field(None, description="model -> models to try, in order, "
                                                                   "when no account can serve it")
    minIntervalPerCredential: float | None = Field(None, ge=0)
    pacingJitter: float | None = Field(None, ge=0, le=1)
    overflowPolicy: Literal["compact", "trim", "error"] | None = None
    webSearch: Literal["on", "off"] | None = Field(None, description="web search tools answered through Kiro (on) or left out")


class SettingsView(BaseModel):
    loadBalancing: str
    cooldownSeconds: float
    unhealthySeconds: float
    failureLimit: int
    maxAttempts: int
    maxAttemptsPerCredential: int
    stickySeconds: float
    maxConcurrentPerCredential: int
    maxRpmPerCredential: int
    queueTimeout: float
    proxyUrl: str | None = Field(None, description="scheme://host:port only")
    proxyUsername: str | None = None
    hasProxyPassword: bool
    modelMap: dict[str, str]
    defaultModel: str | None = None
    logBodies: bool
    modelFallbacks: dict[str, list[str]]
    minIntervalPerCredential: float
    pacingJitter: float
    overflowPolicy: str
    webSearch: str
    saved: bool | None = Field(None, description="in a PUT answer: whether config.json was written")


class SetName(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, max_length=80, description="a human label; empty or null removes it")


def _masked_proxy(url: str | None) -> str | None:
    if not url or not url.strip():
        return None
    if url.strip().lower() == "direct":
        return "direct"
    try:
        return Proxy.parse(url).url
    except ProxyError:
        return "(invalid)"


def _save(path: Path, changes: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    if path.exists():
        loaded = read_json(path)
        if isinstance(loaded, dict):
            data = loaded
    for key, value in changes.items():
        if value is None or value == "":
            data.pop(key, None)
        else:
            data[key] = value
    write_json_atomic(path, data)


class SettingsApi:
    gw: AdminServices

    def config_path(self) -> Path | None:  # (AdminApi's own wins; here for type checkers)
        raise NotImplementedError

    def _cred(self, request: Request) -> Credential:  # (AdminApi's own wins; here for type checkers)
        raise NotImplementedError

    def _settings_view(self) -> dict[str, Any]:
        s = self.gw.settings
        view = {k: getattr(s, attr) for k, attr in EDITABLE.items() if k not in ("proxyPassword",)}
        view["proxyUrl"] = _masked_proxy(s.proxy_url)
        view["hasProxyPassword"] = bool(s.proxy_password)
        view["modelMap"] = dict(s.model_map)
        view["modelFallbacks"] = {k: list(v) for k, v in s.model_fallbacks.items()}
        return view

    async def get_settings(self, request: Request):
        return self._settings_view()

    async def put_settings(self, request: Request):
        body: SettingsUpdate = await _body(request, SettingsUpdate)
        sent = {k: getattr(body, k) for k in body.model_fields_set}
        if "proxyUrl" in sent and sent["proxyUrl"] and sent["proxyUrl"].strip().lower() != "direct":
            try:
                Proxy.parse(sent["proxyUrl"])
            except ProxyError as e:
                raise AdminError(400, f"proxyUrl: {e}.") from None
        for name in [n for k, chain in (sent.get("modelFallbacks") or {}).items() for n in (k, *chain)]:
            try:
                self.gw.catalog.map(name)
            except UnknownModel:
                raise AdminError(400, f"modelFallbacks: unknown model {name!r}.") from None
        s = self.gw.settings
        merged = s.model_dump()
        for key, value in sent.items():
            merged[EDITABLE[key]] = value if value != "" else None
        try:
            checked = Settings.model_validate(merged)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise AdminError(400, f"Invalid settings: {problems}") from None
        for key in sent:
            setattr(s, EDITABLE[key], getattr(checked, EDITABLE[key]))
        self.gw.pool.sticky.ttl = s.sticky_seconds
        path = self.config_path()
        if path is not None and sent:
            await asyncio.to_thread(_save, path, sent)
            if self.gw.apply_config is not None:
                await self.gw.apply_config()  # the model map and the rest, as a hand edit would apply
        return {**self._settings_view(), "saved": path is not None}

    async def set_name(self, request: Request):
        cred = self._cred(request)
        body: SetName = await _body(request, SetName)
        name = (body.name or "").strip()
        cred.set_name(name)
        await self.gw.pool.save()
        return {"success": True, "message": f"Credential #{cred.id} {'named ' + repr(name) if name else 'unnamed'}."}

"""The admin API under /api/admin (kiro.rs's shapes; README “Admin API”, /api/admin/openapi.json): manage the credential pool.

Enabled only when `adminApiKey` is set (else every path answers 404). The key comes as `x-api-key`
or `Authorization: Bearer`, compared in constant time. Errors are `{"error":{"type","message"}}`.
No answer or log line carries a token, client secret, API key or proxy password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..core.conversation import GatewayError
from ..util.files import read_json, write_json_atomic
from ..web.http import JSONResponse
from ..kiro.auth import RefreshError
from ..kiro.client import Proxy, ProxyError
from ..pool import importer
from ..pool.credential import Credential
from ..state.base import StoreError
from . import schemas as S
from .common import AdminError, _body, _error, _id, _iso
from .keys import KeysApi
from .logins import LoginsApi
from .logs import LogsApi
from .openapi import ROUTES, openapi_document
from .services import AdminServices
from .settings import SettingsApi

log = logging.getLogger("kiro_gateway.admin")

__all__ = ["admin_routes", "AdminError"]

PREFIX = "/api/admin"


class AdminApi(LogsApi, KeysApi, LoginsApi, SettingsApi):
    def __init__(self, gw: AdminServices) -> None:
        self.gw = gw
        self.pool = gw.pool

    # -- plumbing --------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        key = self.gw.settings.admin_api_key
        if not key:
            raise AdminError(404, "The admin API is disabled: set adminApiKey in config.json to enable it.")
        try:  # the web console's cookie session (kiro_gateway/console/sessions.py), CSRF-checked
            if self.gw.signed_in is not None and self.gw.signed_in(request):
                return
        except PermissionError as e:
            raise AdminError(403, str(e), "permission_error") from None
        given = request.headers.get("x-api-key", "")
        if not given:
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise AdminError(401, "Invalid or missing admin API key", "authentication_error")

    def _wrap(self, handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                result = await handler(request)
            except AdminError as e:
                return _error(e.status, e.message, e.type)
            except RefreshError as e:
                return _error(400 if e.permanent else 502, f"Token refresh failed: {e}")
            except GatewayError as e:
                status = e.status if e.status in (400, 404) else 502
                return _error(status, e.message)
            except StoreError:
                return _error(503, "The state store is unreachable; try again shortly.")
            except Exception:  # noqa: BLE001 - logged; the client gets no internals
                log.exception("admin %s %s failed", request.method, request.url.path)
                return _error(500, "Internal error in the admin API.")
            if isinstance(result, Response):
                return result
            status, body = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(body, status_code=status)

        return endpoint

    def _cred(self, request: Request) -> Credential:
        cred = self.pool.get(request.path_params["id"])
        if cred is None:
            raise AdminError(404, f"No credential #{request.path_params['id']}.")
        return cred

    def view(self, cred: Credential, current: str | None, now: float) -> dict[str, Any]:
        pool, s = self.pool, self.gw.settings
        h = pool.health[cred.id]
        own = cred.raw.get("proxyUrl")
        proxy_url = None
        if isinstance(own, str) and own.strip().lower() not in ("", "direct"):
            try:
                proxy_url = Proxy.parse(own).url  # scheme://host:port only
            except ProxyError:
                proxy_url = "(invalid)"
        try:
            has_proxy = pool.proxy_for(cred) is not None
        except GatewayError:
            has_proxy = True  # configured, but unusable
        rt = cred.refresh_token
        return {
            "id": _id(cred), "name": cred.raw.get("name") if isinstance(cred.raw.get("name"), str) else None,
            "priority": cred.priority, "disabled": cred.disabled,
            "disabledReason": cred.raw.get("disabledReason") if cred.disabled else None,
            "status": pool.status(cred), "reason": h.reason or pool.alerts.current(cred.id), "authMethod": cred.auth_method,
            "email": cred.raw.get("email") if isinstance(cred.raw.get("email"), str) else None,
            "subscriptionTitle": cred.raw.get("subscriptionTitle") if isinstance(cred.raw.get("subscriptionTitle"), str)
            else None,
            "region": cred.region(s.region), "expiresAt": _iso(cred.expires_at),
            "successCount": h.success_count, "failureCount": h.failure_count,
            "refreshFailureCount": h.refresh_failures, "inFlight": h.in_flight,
            "lastUsedAt": _iso(h.last_used), "cooldownUntil": _iso(h.cooldown_until if h.cooldown_until > now else 0),
            "exhaustedUntil": _iso(h.exhausted_until if h.exhausted_until > now else 0),
            "unhealthyUntil": _iso(h.unhealthy_until if h.unhealthy_until > now else 0),
            "hasProfileArn": bool(cred.profile_arn), "hasProxy": has_proxy, "proxyUrl": proxy_url,
            "refreshTokenHash": hashlib.sha256(rt.encode()).hexdigest() if rt else None,
            "isCurrent": cred.id == current,
        }

    # -- credentials -----------------------------------------------------------------------------

    async def list_credentials(self, request: Request):
        now, current = time.time(), self.pool.current_id()
        creds = sorted(self.pool.credentials, key=lambda c: (c.priority, c.index))
        views = [self.view(c, current, now) for c in creds]
        cur = self.pool.get(current) if current else None
        return {"total": len(views), "available": sum(v["status"] == "active" for v in views),
                "currentId": _id(cur) if cur else None, "loadBalancing": self.gw.settings.load_balancing,
                "credentials": views}

    async def add_credential(self, request: Request):
        body: S.AddCredential = await _body(request, S.AddCredential)
        method = {"builder-id": "idc", "iam": "idc"}.get(body.authMethod, body.authMethod)
        fields: dict[str, Any] = {}
        if method == "api_key" or body.kiroApiKey:
            key = (body.kiroApiKey or "").strip()
            if not key:
                raise AdminError(400, "authMethod api_key needs kiroApiKey.")
            if any(c.api_key and hmac.compare_digest(hashlib.sha256(c.api_key.encode()).digest(),
                                                     hashlib.sha256(key.encode()).digest())
                   for c in self.pool.credentials):
                raise AdminError(409, "This Kiro API key is already in the pool.")
            fields.update(kiroApiKey=key, authMethod="api_key")
        else:
            token = (body.refreshToken or "").strip()
            if len(token) < 100 or "..." in token:
                raise AdminError(400, "The refresh token looks truncated (under 100 characters or containing "
                                      "'...'): copy the whole token.")
            if self.pool.has_refresh_token(token):
                raise AdminError(409, "This refresh token is already in the pool.")
            if method == "idc" and not (body.clientId and body.clientSecret):
                raise AdminError(400, "IdC (Builder ID) credentials need clientId and clientSecret.")
            fields.update(refreshToken=token, authMethod=method)
        if body.proxyUrl and body.proxyUrl.strip().lower() != "direct":
            try:
                Proxy.parse(body.proxyUrl)
            except ProxyError as e:
                raise AdminError(400, f"proxyUrl: {e}.") from None
        probe = Credential(fields, len(self.pool.credentials))
        for key in ("clientId", "clientSecret", "region", "authRegion", "apiRegion", "profileArn", "machineId",
                    "email", "proxyUrl", "proxyUsername", "proxyPassword", "name"):
            value = getattr(body, key)
            if isinstance(value, str) and value.strip() and (method == "idc" or key not in ("clientId", "clientSecret")):
                probe.set_field(key, value.strip())
        if body.priority:
            probe.set_priority(body.priority)
        probe.set_disabled(False)
        if probe.auth_method != "api_key":
            await self.pool.probe(probe)  # proves the token works; raises if not
            if self.pool.has_refresh_token(probe.refresh_token or ""):
                raise AdminError(409, "This refresh token is already in the pool.")  # added meanwhile
        (cred,) = await self.pool.add(probe.raw)
        usage_error = None
        try:
            await self.pool.usage.get(cred, force=True)
        except (GatewayError, RefreshError) as e:
            usage_error = str(getattr(e, "message", e))
        log.info("admin: credential #%s added (%s)", cred.id, cred.auth_method)
        return 201, {"success": True, "message": f"Credential #{cred.id} added.", "credentialId": _id(cred),
                     "email": cred.raw.get("email"), "subscriptionTitle": cred.raw.get("subscriptionTitle"),
                     "usageError": usage_error}

    async def delete_credential(self, request: Request):
        cred = self._cred(request)
        try:
            await self.pool.remove(cred)
        except ValueError as e:
            raise AdminError(400, str(e)) from None
        log.info("admin: credential #%s deleted", cred.id)
        return {"success": True, "message": f"Credential #{cred.id} deleted."}

    async def set_disabled(self, request: Request):
        cred = self._cred(request)
        body: S.SetDisabled = await _body(request, S.SetDisabled)
        await self.pool.set_disabled(cred, body.disabled)
        return {"success": True, "message": f"Credential #{cred.id} {'disabled' if body.disabled else 'enabled'}."}

    async def set_priority(self, request: Request):
        cred = self._cred(request)
        body: S.SetPriority = await _body(request, S.SetPriority)
        await self.pool.set_priority(cred, body.priority)
        return {"success": True, "message": f"Credential #{cred.id} now has priority {body.priority}."}

    async def reset(self, request: Request):
        cred = self._cred(request)
        await self.pool.reset(cred)
        return {"success": True, "message": f"Credential #{cred.id} reset and enabled."}

    async def refresh(self, request: Request):
        cred = self._cred(request)
        if cred.auth_method == "api_key":
            raise AdminError(400, "An API-key credential has no token to refresh.")
        if not cred.refresh_token:
            raise AdminError(400, f"Credential #{cred.id} has no refresh token.")
        await self.pool.token_for(cred, force=True)
        return {"success": True, "message": f"Credential #{cred.id} refreshed.", "expiresAt": _iso(cred.expires_at)}

    async def balance(self, request: Request):
        cred = self._cred(request)
        before = self.pool.usage.cached(cred)
        force = request.query_params.get("refresh", "").lower() in ("1", "true", "yes")
        usage = await self.pool.usage.get(cred, force=force)
        return {"id": _id(cred), **usage.as_dict(), "cached": usage is before}

    async def import_credentials(self, request: Request):
        body: S.ImportRequest = await _body(request, S.ImportRequest, optional=True)
        ide = Path(body.fromIde) if body.fromIde else None
        cli = Path(body.fromCli) if body.fromCli else None
        for path, is_ide, name in ((ide, True, "fromIde"), (cli, False, "fromCli")):
            if path is not None and not importer.allowed_place(path, is_ide):
                where = "~/.aws/sso/cache" if is_ide else "kiro-cli's data directory"
                raise AdminError(400, f"{name} must lie inside {where}; to import another file, send its "
                                      "content as ideToken (and ideRegistration).")
        if body.ideToken is not None:
            reg = body.ideRegistration
            found, errors = importer.ide_entry(body.ideToken, "upload", lambda _h: (reg, "upload registration"))
        else:
            found, errors = await asyncio.to_thread(importer.collect, ide, cli, body.ide, body.cli)
        report = importer.ImportReport(errors=errors)
        new = importer.plan(found, self.pool.has_refresh_token, report)
        added = await self.pool.add(*[f.entry for f in new]) if new else []
        report.added = [{"id": _id(c), "source": f.source, "authMethod": c.auth_method} for c, f in zip(added, new, strict=True)]
        log.info("admin: imported %d credential(s), skipped %d", len(added), len(report.skipped))
        return {"success": True, "message": f"{len(added)} credential(s) imported.", **report.as_dict()}

    # -- config ----------------------------------------------------------------------------------

    async def get_load_balancing(self, request: Request):
        return {"mode": self.gw.settings.load_balancing}

    async def put_load_balancing(self, request: Request):
        body: S.LoadBalancing = await _body(request, S.LoadBalancing)
        self.gw.settings.load_balancing = body.mode
        path = self.config_path()
        if path is not None:
            await asyncio.to_thread(_persist_config, path, "loadBalancing", body.mode)
        return {"mode": body.mode}

    def config_path(self) -> Path | None:
        path = self.gw.config_path
        if path is None and self.pool.path is not None:
            path = self.pool.path.parent / "config.json"  # the usual layout: side by side
        return path

    async def openapi(self, request: Request):
        return openapi_document()

    async def not_found(self, request: Request):
        raise AdminError(404, f"{request.method} {request.url.path} is not an admin API endpoint.")

    # -- table -----------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        out: list[BaseRoute] = [Route(path, self._wrap(getattr(self, name)), methods=[method])
                                for method, path, name, *_ in ROUTES]
        every = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        out.append(Route("/{rest:path}", self._wrap(self.not_found), methods=every))
        return out


def _persist_config(path: Path, key: str, value: Any) -> None:
    """Set one key in config.json, keeping the rest (atomic write, 0600)."""
    data: dict[str, Any] = {}
    if path.exists():
        loaded = read_json(path)
        if isinstance(loaded, dict):
            data = loaded
    data.pop("load_balancing", None)
    data[key] = value
    write_json_atomic(path, data)


def admin_routes(gw: AdminServices) -> list[BaseRoute]:
    """Mounted at /api/admin whether or not it is enabled: disabled, every path answers 404."""
    return [Mount(PREFIX, routes=AdminApi(gw).routes())]

"""The console's routes: /admin (the app), /admin/session, /admin/handoff, /admin/events, /admin/try/….

`console_routes(services, sessions)` is given the session service the composition root built; the
admin API asks that service (as its `signed_in`) whether a request is signed in by cookie, besides
the admin key header.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ..admin.services import AdminServices
from ..web.http import JSONResponse
from ..pool.credential import format_expiry
from .events import event_stream
from .playground import Playground
from .sessions import COOKIE, SessionService, same_origin
from .static import StaticAssets

__all__ = ["console_routes"]

_DISABLED = ("The admin console is disabled: set adminApiKey in config.json (or KIRO_GATEWAY_ADMIN_API_KEY) "
             "and restart or save the file.")


def _error(status: int, message: str, type_: str = "invalid_request") -> Response:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status,
                        headers={"cache-control": "no-store"})


def _set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


class ConsoleRoutes:
    def __init__(self, gw: AdminServices, sessions: SessionService) -> None:
        self.gw = gw
        self.sessions = sessions
        self.assets = StaticAssets()

    def _state(self, request: Request) -> dict:
        session = self.sessions.session_of(request)
        out: dict[str, object] = {"enabled": self.sessions.enabled, "signedIn": session is not None}
        if session is not None:
            out.update(csrfToken=session.csrf, expiresAt=format_expiry(session.expires))
        return out

    async def get_session(self, request: Request) -> Response:
        return JSONResponse(self._state(request), headers={"cache-control": "no-store"})

    async def sign_in(self, request: Request) -> Response:
        if not self.sessions.enabled:
            return _error(404, _DISABLED, "not_found")
        if not same_origin(request):
            return _error(403, "Cross-origin sign-in refused.", "permission_error")
        client = request.client.host if request.client else "-"
        if self.sessions.throttled(client):
            return _error(429, "Too many failed sign-ins; wait a minute.", "rate_limit_error")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        key = body.get("key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            return _error(400, "Send {\"key\": \"<adminApiKey>\"}.")
        if not self.sessions.key_matches(key):
            self.sessions.failed_attempt(client)
            return _error(401, "Wrong admin key.", "authentication_error")
        token, session = self.sessions.create()
        response = JSONResponse({"enabled": True, "signedIn": True, "csrfToken": session.csrf,
                                 "expiresAt": format_expiry(session.expires)}, headers={"cache-control": "no-store"})
        _set_cookie(response, request, token, self.sessions.lifetime)
        return response

    async def sign_out(self, request: Request) -> Response:
        try:
            ok = self.sessions.signed_in(request)
        except PermissionError as e:
            return _error(403, str(e), "permission_error")
        if ok:
            self.sessions.revoke(request.cookies.get(COOKIE))
        response = JSONResponse({"enabled": self.sessions.enabled, "signedIn": False},
                                headers={"cache-control": "no-store"})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def handoff(self, request: Request) -> Response:
        if not self.sessions.consume_handoff(request.query_params.get("token")):
            return Response("This sign-in link is used or expired. / 此登录链接已使用或已过期。", status_code=403,
                            media_type="text/plain; charset=utf-8", headers={"cache-control": "no-store"})
        token, _ = self.sessions.create()
        response = RedirectResponse("/admin/", status_code=303, headers={"cache-control": "no-store"})
        _set_cookie(response, request, token, self.sessions.lifetime)
        return response

    def _allowed(self, request: Request) -> Response | None:
        """None when signed in by cookie or by the admin key header; else the error to answer."""
        if not self.sessions.enabled:
            return _error(404, _DISABLED, "not_found")
        try:
            if self.sessions.signed_in(request):
                return None
        except PermissionError as e:
            return _error(403, str(e), "permission_error")
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("authorization", "")
        given = given or (auth[7:].strip() if auth[:7].lower() == "bearer " else "")
        if given and self.sessions.key_matches(given):
            return None
        return _error(401, "Sign in to the console first.", "authentication_error")

    async def events(self, request: Request) -> Response:
        denied = self._allowed(request)
        return denied or event_stream(self.gw, request, lambda: self._allowed(request) is None)

    async def app(self, request: Request) -> Response:
        return self.assets.respond(request, request.path_params.get("rest", "") or "index.html")

    async def bare(self, request: Request) -> Response:
        return RedirectResponse("/admin/", status_code=308)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/session", self.get_session, methods=["GET"]),
            Route("/admin/session", self.sign_in, methods=["POST"]),
            Route("/admin/session", self.sign_out, methods=["DELETE"]),
            Route("/admin/handoff", self.handoff, methods=["GET"]),
            Route("/admin/events", self.events, methods=["GET"]),
            Mount("/admin/try", app=Playground(self.gw, self._allowed)),
            Route("/admin", self.bare, methods=["GET", "HEAD"]),
            Route("/admin/{rest:path}", self.app, methods=["GET", "HEAD"]),
        ]


def console_routes(gw: AdminServices, sessions: SessionService) -> list[BaseRoute]:
    return ConsoleRoutes(gw, sessions).routes()

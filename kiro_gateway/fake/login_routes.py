"""The fake Kiro's login routes (logic in login.py): a mixin of the server's request handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .login import Answer, form_fields
from .wire import json_body as _json_body
from .wire import json_response as _json

if TYPE_CHECKING:
    from .state import FakeState

__all__ = ["LoginRoutes", "answer"]


def answer(a: Answer) -> web.Response:
    resp = web.Response(status=a.status, body=a.body, headers=a.headers)
    resp.content_type = a.content_type
    if a.content_type == "text/html":
        resp.charset = "utf-8"
    return resp


def _origin(request: web.BaseRequest) -> str:
    return f"{request.scheme}://{request.host}"


class LoginRoutes:
    state: FakeState

    def login_routes(self) -> dict:
        return {
            ("POST", "/client/register"): self.login_register,
            ("POST", "/device_authorization"): self.login_device,
            ("GET", "/device"): self.login_device_page,
            ("POST", "/device"): self.login_device_decide,
            ("GET", "/login"): self.login_social_page,
            ("POST", "/login"): self.login_social_decide,
            ("POST", "/oauth/token"): self.login_social_token,
            ("GET", "/__fake/logins"): self.ctl_logins,
            ("POST", "/__fake/logins/approve"): self.ctl_login_approve,
            ("POST", "/__fake/logins/deny"): self.ctl_login_deny,
            ("POST", "/__fake/logins/expire"): self.ctl_login_expire,
        }

    # -- login (fake/login.py) ------------------------------------------------------------------

    async def login_register(self, request):
        return answer(self.state.login.register_client(await _json_body(request)))

    async def login_device(self, request):
        return answer(self.state.login.start_device_authorization(await _json_body(request), _origin(request)))

    async def login_device_page(self, request):
        return answer(self.state.login.device_page(dict(request.query)))

    async def login_device_decide(self, request):
        return answer(self.state.login.device_decide(form_fields(await request.content.read())))

    async def login_social_page(self, request):
        return answer(self.state.login.social_authorize(dict(request.query)))

    async def login_social_decide(self, request):
        return answer(self.state.login.social_decide(form_fields(await request.content.read())))

    async def login_social_token(self, request):
        return answer(self.state.login.social_token(await _json_body(request)))

    async def ctl_logins(self, request):
        return _json(200, self.state.login.pending())

    async def ctl_login_approve(self, request):
        return _json(200, self.state.login.control("approve", await _json_body(request)))

    async def ctl_login_deny(self, request):
        return _json(200, self.state.login.control("deny", await _json_body(request)))

    async def ctl_login_expire(self, request):
        return _json(200, self.state.login.control("expire", await _json_body(request)))

"""Admin endpoints for logging in to Kiro from the gateway (login/manager.py does the work)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..login import Attempt, LoginConflict, LoginInputError, LoginUpstreamError
from . import login_schemas as L
from .services import AdminServices
from .common import AdminError, _body

__all__ = ["LoginsApi"]


class LoginsApi:
    gw: AdminServices

    def _login(self, request: Request) -> Attempt:
        att = self.gw.logins.get(request.path_params["id"])
        if att is None:
            raise AdminError(404, f"No login {request.path_params['id']!r}.")
        return att

    async def start_login(self, request: Request):
        body: L.LoginStart = await _body(request, L.LoginStart)
        try:
            att = await self.gw.logins.start(body.method, start_url=body.startUrl, region=body.region,
                                             provider=body.provider, callback_port=body.callbackPort)
        except LoginInputError as e:
            raise AdminError(400, str(e)) from None
        except LoginConflict as e:
            raise AdminError(409, str(e)) from None
        except LoginUpstreamError as e:
            raise AdminError(502, str(e)) from None
        return 201, att.view()

    async def list_logins(self, request: Request):
        return {"logins": [a.view() for a in self.gw.logins.list()]}

    async def get_login(self, request: Request):
        return self._login(request).view()

    async def login_callback(self, request: Request):
        att = self._login(request)
        body: L.LoginCallback = await _body(request, L.LoginCallback)
        try:
            await self.gw.logins.callback(att.id, body.url)
        except LoginInputError as e:
            raise AdminError(400, str(e)) from None
        except LoginConflict as e:
            raise AdminError(409, str(e)) from None
        return att.view()

    async def cancel_login(self, request: Request):
        att = self._login(request)
        await self.gw.logins.cancel(att.id)
        return att.view()

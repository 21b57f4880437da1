"""The console's playground: /admin/try/v1/… runs a client request as the signed-in console.

The browser cannot hold the gateway's apiKey, so the console's session stands in for it: after the
session (and CSRF) check the request goes through the gateway's own routes unchanged, marked
`kiro_console` in its scope (the client auth, app/auth.py, accepts that mark). The answer gains one header,
`x-kiro-credential`, naming the credential that served it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..core.trace import CURRENT

__all__ = ["Playground", "CONSOLE_SCOPE_KEY"]

CONSOLE_SCOPE_KEY = "kiro_console"
_PREFIX = "/admin/try"
_ALLOWED = ("/v1/", "/v1beta/")


class Playground:
    def __init__(self, gw: Any, allowed: Callable[[Request], Response | None]) -> None:
        self.gw = gw
        self.allowed = allowed

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        denied = self.allowed(request)
        path = scope["path"][len(_PREFIX):] if scope["path"].startswith(_PREFIX) else ""
        if denied is None and not path.startswith(_ALLOWED):
            denied = Response("The playground runs /v1/… and /v1beta/… requests only.", status_code=404,
                              media_type="text/plain")
        if denied is not None:
            await denied(scope, receive, send)
            return
        inner = dict(scope, path=path, raw_path=path.encode(), root_path="")
        inner[CONSOLE_SCOPE_KEY] = True
        inner.pop("router", None)
        inner.pop("endpoint", None)
        inner.pop("path_params", None)

        async def tagged(message) -> None:
            if message["type"] == "http.response.start":
                rec = CURRENT.get()
                if rec is not None and rec.credential:
                    message = dict(message, headers=[*message.get("headers", []),
                                                     (b"x-kiro-credential", str(rec.credential).encode())])
            await send(message)

        await scope["app"](inner, receive, tagged)

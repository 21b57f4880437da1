"""The loopback listener a social sign-in redirects the browser to (http://localhost:PORT/oauth/callback).

Kiro only sends the browser back to this machine, so the gateway's own port (maybe on another host,
maybe behind a proxy) cannot be the target: a small listener on 127.0.0.1 (and ::1 when there is
one) runs while a social login is pending. When the browser cannot reach it (a remote server, a
container), the person pastes the final URL instead (LoginManager.callback).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .social import CALLBACK_PATH

__all__ = ["CallbackListener"]

log = logging.getLogger("kiro_gateway.login")

# (ok, English, Chinese) for the page the browser shows
Outcome = tuple[bool, str, str]


def _page(ok: bool, english: str, chinese: str) -> web.Response:
    title = "Kiro login complete / Kiro 登录完成" if ok else "Kiro login failed / Kiro 登录失败"
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>{title}</h1><p>{html.escape(english)}</p><p>{html.escape(chinese)}</p></body></html>")
    return web.Response(status=200 if ok else 400, text=body, content_type="text/html", charset="utf-8")


class CallbackListener:
    """Serves CALLBACK_PATH on a loopback port and hands each redirect URL to `on_redirect`."""

    def __init__(self, port: int, on_redirect: Callable[[str], Awaitable[Outcome]]) -> None:
        self.port = port
        self.on_redirect = on_redirect
        self._runner: web.ServerRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "GET" or request.path != CALLBACK_PATH:
            return web.Response(status=404, text="not found")
        try:
            ok, english, chinese = await self.on_redirect(str(request.url))
        except Exception:  # noqa: BLE001 - logged; the browser gets a plain failure page
            log.exception("login callback failed")
            ok, english, chinese = False, "Internal error; see the gateway's log.", "内部错误，请查看网关日志。"
        return _page(ok, english, chinese)

    async def start(self) -> None:
        """Listen; raises OSError when the port is taken (the paste fallback still works)."""
        if self._runner is not None:
            return
        runner = web.ServerRunner(web.Server(self._handle, access_log=None), shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port, shutdown_timeout=0.5).start()
        except OSError:
            await runner.cleanup()
            raise
        try:  # localhost may resolve to ::1 first
            await web.TCPSite(runner, "::1", self.port, shutdown_timeout=0.5).start()
        except OSError:
            pass
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

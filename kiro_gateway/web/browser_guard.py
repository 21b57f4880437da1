"""Which web pages may talk to the gateway: a DNS-rebinding and cross-site guard, and CORS.

Coding clients (CLIs, SDKs, Open WebUI's server) send no `Origin`; browsers do, and a page the
user merely visits could otherwise use a gateway that admits loopback clients without a key —
by a cross-site "simple" POST (no preflight, the gateway would run it), or by DNS rebinding
(evil.example resolving to 127.0.0.1, so the page is "same-origin" with the gateway). Two rules:

- **Host.** With no `apiKey` (the gateway admits by address), or whenever `allowedHosts` is set,
  the `Host` header must be an IP literal, `localhost` (or `*.localhost`), this machine's own
  name, or match an `allowedHosts` entry (`name`, `*.domain`, or `*` for any). Rebinding needs a
  DNS name the attacker controls; that name is not in the list.
- **Origin.** A request with an `Origin` header is refused unless the origin is this gateway's
  own (same host and port as `Host`: the console) or listed in `corsOrigins` (or `*`). Listed
  origins get CORS answers — preflights included — from Starlette's `CORSMiddleware`.

Refusals are 403s in the dialect the path belongs to (`reject`). Both lists reload live.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BrowserGuard", "host_allowed", "split_host"]

_CORS_HEADERS = ("*",)


def split_host(value: str) -> str:
    """The name in a `Host` header or an origin's netloc, without the port; lower case."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8990
        return value[1:value.find("]")] if "]" in value else value[1:]
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


def _own_names() -> set[str]:
    names = {"localhost"}
    for fn in (socket.gethostname, socket.getfqdn):
        try:
            name = fn().lower()
        except OSError:
            continue
        if name:
            names.add(name)
            names.add(name.split(".")[0])
    return names


_OWN = _own_names()


def host_allowed(host: str, allowed: list[str]) -> bool:
    name = split_host(host)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True  # an address typed in: no name to rebind
    except ValueError:
        pass
    if name in _OWN or name.endswith(".localhost"):
        return True
    for entry in allowed:
        entry = entry.strip().lower()
        if entry == "*" or entry == name or (entry.startswith("*.") and name.endswith(entry[1:])):
            return True
    return False


class BrowserGuard:
    def __init__(self, app: ASGIApp, settings, reject: Callable[[str, str], ASGIApp]) -> None:
        self.app = app
        self.settings = settings  # read on every request: hot reload changes the lists
        self.reject = reject  # (path, message) → an ASGI app answering 403 in the path's dialect
        self._cors: tuple[tuple[str, ...], ASGIApp] | None = None

    def _with_cors(self, origins: tuple[str, ...]) -> ASGIApp:
        if self._cors is None or self._cors[0] != origins:
            self._cors = (origins, CORSMiddleware(self.app, allow_origins=list(origins), allow_methods=["*"],
                                                   allow_headers=list(_CORS_HEADERS), expose_headers=["*"],
                                                   max_age=600))
        return self._cors[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = origin = ""
        for k, v in scope["headers"]:
            if k == b"host":
                host = v.decode("latin-1")
            elif k == b"origin":
                origin = v.decode("latin-1")
        s = self.settings
        allowed_hosts = s.allowed_hosts
        if (allowed_hosts or not s.api_key) and not host_allowed(host, allowed_hosts):
            shown = split_host(host)[:100] or "(none)"
            return await self.reject(scope["path"], f"Host '{shown}' is not a name this gateway answers to; its "
                                     "operator adds it to allowedHosts in config.json. / 主机名不在 allowedHosts "
                                     "中，请在 config.json 中添加。")(scope, receive, send)
        if not origin:
            return await self.app(scope, receive, send)
        cors = tuple(s.cors_origins)
        if "*" in cors or origin in cors:
            return await self._with_cors(cors)(scope, receive, send)
        parts = urlsplit(origin)
        if parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower():
            return await self.app(scope, receive, send)  # the gateway's own pages (the console)
        return await self.reject(scope["path"], "Cross-origin browser requests are refused; the gateway's operator "
                                 "lists allowed web origins in corsOrigins in config.json. / 已拒绝跨源浏览器请求，"
                                 "可在 config.json 的 corsOrigins 中允许来源。")(scope, receive, send)

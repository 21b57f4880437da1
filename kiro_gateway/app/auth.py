"""Who may use the gateway's model endpoints: the apiKey, a named client key, or (with no apiKey
set) a client on this machine; named keys are held to their own limits."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from ..config import Settings
from ..console.playground import CONSOLE_SCOPE_KEY
from ..core.conversation import GatewayError
from ..keys.limits import KeyLimits
from ..keys.registry import ClientKey, KeyRegistry
from ..observe.record import RequestRecord

__all__ = ["ClientAuth"]

_LOOPBACK = ("127.", "::1", "localhost")


def _presented(request: Request) -> str:
    given = request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or ""
    if not given:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        else:
            given = request.query_params.get("key", "")
    return given


class ClientAuth:
    def __init__(self, settings: Settings, keys: KeyRegistry, limits: KeyLimits) -> None:
        self.settings = settings
        self.keys = keys
        self.limits = limits

    def identify(self, request: Request) -> tuple[bool, ClientKey | None]:
        """(authorized, the named client key presented — None for the apiKey or loopback)."""
        key = self.settings.api_key
        if request.scope.get(CONSOLE_SCOPE_KEY):  # the signed-in console's playground (console/playground.py)
            return True, None
        given = _presented(request)
        if key and hmac.compare_digest(given.encode(), key.encode()):
            return True, None
        if len(self.keys) and (named := self.keys.find(given)) is not None:
            return True, named
        if not key:  # no key configured: only this machine may use the gateway
            host = request.client.host if request.client else ""
            return host.startswith(_LOOPBACK), None
        return False, None

    def authorized(self, request: Request) -> bool:
        return self.identify(request)[0]

    def client(self, request: Request) -> ClientKey | None:
        """Authenticate (or raise the 401): the named client key presented, None for the gateway's
        own key or a loopback client. Its id goes into the request scope as `kiro_gateway.client`:
        what a client owns (its stored Responses) is keyed by it."""
        ok, named = self.identify(request)
        if not ok:
            self.check_auth(request)
        request.scope["kiro_gateway.client"] = f"key:{named.id}" if named is not None else "default"
        return named

    async def admit(self, request: Request, rec: RequestRecord) -> None:
        """Authenticate, and hold a named key to its own limits (429 in the client's dialect)."""
        named = self.client(request)
        if named is None:
            rec.key = "default" if self.settings.api_key else "local"
            return
        rec.key, rec.key_id, rec.pin = named.name, named.id, named.credential
        if named.limited:
            await self.limits.check(named)

    def check_auth(self, request: Request) -> None:
        if self.authorized(request):
            return
        if not self.settings.api_key and not len(self.keys):
            raise GatewayError("authentication", "This gateway has no apiKey set, so it admits only clients on its "
                               "own machine; its operator sets apiKey in config.json to let others in.")
        raise GatewayError("authentication", "Invalid API key: send the gateway's apiKey as "
                           "x-api-key or Authorization: Bearer.")

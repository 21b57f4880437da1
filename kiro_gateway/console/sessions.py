"""The console's sign-in: server-side sessions behind an HttpOnly cookie, CSRF tokens, desktop hand-offs.

The browser never holds the admin key: it signs in once with it and gets an opaque session cookie
(HttpOnly, SameSite=Strict, with an expiry). Sessions live in this process's memory only, so a
restart signs everyone out. A state-changing request authenticated by the cookie must also send the
session's CSRF token in `x-csrf-token` and come from the gateway's own origin.

A hand-off is a single-use token, valid 60 s, that the desktop window opens as
`/admin/handoff?token=…` to start a signed-in session without typing the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["SessionService", "Session", "COOKIE", "SESSION_SECONDS", "HANDOFF_SECONDS"]

COOKIE = "kg_console"
SESSION_SECONDS = 12 * 3600
HANDOFF_SECONDS = 60.0
_MAX_SESSIONS = 1000
_SAFE = ("GET", "HEAD", "OPTIONS")
_FAIL_WINDOW, _FAIL_LIMIT = 60.0, 10  # sign-in attempts per client address per minute


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    expires: float
    csrf: str


class SessionService:
    def __init__(self, settings, clock=time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.lifetime = SESSION_SECONDS
        self._sessions: dict[str, Session] = {}  # sha256(cookie value) -> session
        self._handoffs: dict[str, float] = {}  # sha256(token) -> expiry
        self._failures: dict[str, list[float]] = {}

    # -- state ------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.settings.admin_api_key)

    def _prune(self) -> None:
        now = self.clock()
        for table in (self._sessions,):
            for k in [k for k, s in table.items() if s.expires <= now]:
                del table[k]
        for k in [k for k, exp in self._handoffs.items() if exp <= now]:
            del self._handoffs[k]

    def create(self) -> tuple[str, Session]:
        """A new session: (the cookie value, the session)."""
        self._prune()
        while len(self._sessions) >= _MAX_SESSIONS:  # oldest out first
            del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].expires)]
        token = secrets.token_urlsafe(32)
        session = Session(self.clock() + self.lifetime, secrets.token_urlsafe(24))
        self._sessions[_digest(token)] = session
        return token, session

    def lookup(self, token: str | None) -> Session | None:
        if not token or not self.enabled:
            return None
        session = self._sessions.get(_digest(token))
        if session is None:
            return None
        if session.expires <= self.clock():
            del self._sessions[_digest(token)]
            return None
        return session

    def revoke(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def revoke_all(self) -> None:
        self._sessions.clear()

    # -- the admin key ----------------------------------------------------------------------------

    def key_matches(self, given: str) -> bool:
        key = self.settings.admin_api_key
        return bool(key) and hmac.compare_digest(given.encode(), key.encode())

    def throttled(self, client: str) -> bool:
        now = self.clock()
        recent = [t for t in self._failures.get(client, []) if t > now - _FAIL_WINDOW]
        self._failures[client] = recent
        return len(recent) >= _FAIL_LIMIT

    def failed_attempt(self, client: str) -> None:
        self._failures.setdefault(client, []).append(self.clock())
        if len(self._failures) > 10_000:
            self._failures.clear()

    # -- hand-off to the desktop window --------------------------------------------------------------

    def issue_handoff(self) -> str:
        """A single-use token for `/admin/handoff?token=…`, valid for 60 seconds."""
        self._prune()
        token = secrets.token_urlsafe(32)
        self._handoffs[_digest(token)] = self.clock() + HANDOFF_SECONDS
        return token

    def consume_handoff(self, token: str | None) -> bool:
        if not token or not self.enabled:
            return False
        expires = self._handoffs.pop(_digest(token), None)
        return expires is not None and expires > self.clock()

    # -- requests ---------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.lookup(request.cookies.get(COOKIE))

    def signed_in(self, request: Request) -> bool:
        """True when the request carries a live session cookie (and, if it changes state, a valid
        CSRF token from our own origin); False when it carries none. PermissionError when it carries
        one but fails the CSRF checks."""
        session = self.session_of(request)
        if session is None:
            return False
        if request.method in _SAFE:
            return True
        if not same_origin(request):
            raise PermissionError("Cross-origin request refused: the Origin header does not match this gateway.")
        given = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise PermissionError("Missing or wrong x-csrf-token for this console session.")
        return True


def same_origin(request: Request) -> bool:
    """The Origin (or, without it, the Referer) names this host. A request with neither is refused."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    if not origin or origin == "null" or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()

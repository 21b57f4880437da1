"""What one client request leaves behind: a small record, filled in as the request goes.

The request handler opens it (`RequestLog.begin`), the pool adds the credential, attempts and
first-byte time through `core.trace.CURRENT` (the request's context: see there), and the end of
the reply closes it (`failed`, `answered`, or the stream's end). Closing only enqueues it: the
request log's writer turns it into a log row and aggregates later, off the request path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ..core.conversation import GatewayError

__all__ = ["RequestRecord", "RecordSink", "request_id"]

_SCOPE_KEY = "kiro_gateway.request_id"


class RecordSink(Protocol):
    """Where a closed record goes (the request log)."""

    @property
    def bodies(self) -> bool:  # whether request and response bodies are kept
        ...

    def finish(self, rec: "RequestRecord") -> None: ...


def request_id(rec: Any) -> str | None:
    """The request's id, made on first use and kept in its ASGI scope."""
    request = getattr(rec, "request", None)
    if request is None:
        return None
    return request.scope.setdefault(_SCOPE_KEY, secrets.token_hex(8))


class RequestRecord:
    __slots__ = ("log", "t0", "started", "request", "dialect", "key", "key_id", "model", "kiro_model",
                 "credential", "attempts", "ttfb", "total", "status", "error", "message", "stream",
                 "tokens_in", "tokens_out", "credits", "response_body", "pin", "trimmed", "rule")

    def __init__(self, log: RecordSink, request: "Request", dialect: str) -> None:
        self.log = log
        self.t0 = time.perf_counter()
        self.started = time.time()
        self.request = request
        self.dialect = dialect
        self.key: str | None = None  # client key name ("default" = the apiKey)
        self.key_id: str | None = None  # named keys only
        self.pin: str | None = None  # the credential the key is pinned to
        self.model: str | None = None
        self.kiro_model: str | None = None
        self.credential: str | None = None
        self.attempts = 0
        self.ttfb: float | None = None
        self.total = 0.0
        self.status = 0
        self.error: str | None = None
        self.message: str | None = None
        self.stream = False
        self.tokens_in = 0
        self.tokens_out = 0
        self.credits: float | None = None
        self.response_body: bytes | None = None
        self.trimmed = 0  # history messages left out to fit the window (kiro/fit.py)
        self.rule: str | None = None  # the Kiro request rule the request broke (kiro/rules.py)

    # -- from the pool, through CURRENT ------------------------------------------------------------

    def attempt(self, cred_id: str) -> None:
        self.attempts += 1
        self.credential = cred_id

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.t0

    # -- the ends (Gateway.handle) -----------------------------------------------------------------

    def failed(self, err: "GatewayError", response: "Response") -> "Response":
        self.status = response.status_code
        self.error = err.kind
        self.message = err.message
        self.rule = getattr(err, "rule", None)
        if self.log.bodies:
            self.response_body = bytes(response.body)
        self.log.finish(self)
        return response

    def answered(self, reply: Any, response: "Response") -> "Response":
        self.status = response.status_code
        self._usage(reply)
        if self.log.bodies:
            self.response_body = bytes(response.body)
        self.log.finish(self)
        return response

    def streaming(self, reply: Any) -> Callable[[str | None], None]:
        """The callback the stream calls when it ends (with an error kind if it broke)."""
        self.stream = True

        def ended(error: str | None = None) -> None:
            self.status = 200
            self._usage(reply)
            if error:
                self.error = error
            self.log.finish(self)

        return ended

    def _usage(self, reply: Any) -> None:
        """Tokens and credits from the reply's mapper (as its closing Usage event reports them)."""
        m = getattr(reply, "mapper", None)
        if m is None:
            return
        out = getattr(m, "out_tokens", 0) or 0
        pct = getattr(m, "context_pct", None)
        if pct is not None:
            self.tokens_in = max(1, int(pct * getattr(m, "context_window", 0) / 100) - out)
        else:
            self.tokens_in = getattr(m, "estimated_input", 0) or 0
        self.tokens_out = out
        self.credits = getattr(m, "credits", None)
        if self.error is None and not getattr(m, "finished", True):
            self.error = "upstream" if getattr(m, "errored", False) else "interrupted"

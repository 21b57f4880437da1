"""The current request's trace: what the pool tells the request log without being passed it.

The request log opens a record per client request and sets it here; the pool, deep in the call,
notes the Kiro model, each attempt's credential and the first byte's time on whatever is set. A
`ContextVar`, so concurrent requests never see each other's, and no signature in between changes.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

__all__ = ["Trace", "CURRENT"]


class Trace(Protocol):
    pin: str | None  # the credential a client key is pinned to
    kiro_model: str | None
    credential: str | None  # the credential of the latest attempt

    def attempt(self, cred_id: str) -> None: ...

    def first_byte(self) -> None: ...


CURRENT: ContextVar[Trace | None] = ContextVar("kiro_gateway_request", default=None)

"""What a dialect's routes need from the gateway, and nothing more.

The composition root (app/) builds one `Front` and hands it, with the model `Catalog`
(core/models.py), to each dialect's `routes()`. A route authenticates through it and passes a
model request to its generic handler (parse → upstream → render); it never sees the pool, the
store or Kiro.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from .base import Dialect

__all__ = ["Front"]


class Front(Protocol):
    async def handle(self, request: Request, dialect: Dialect) -> Response:
        """A model request in `dialect`: authenticated, parsed, sent upstream, rendered back."""
        ...

    def authorized(self, request: Request) -> bool:
        """Whether the request carries a key this gateway admits (no side effect)."""
        ...

    def client(self, request: Request) -> object | None:
        """Authenticate or raise the 401 GatewayError; the named client key presented, if any."""
        ...

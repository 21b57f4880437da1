"""A model as clients see it listed, and what the model-listing routes may ask of the catalogue.

The catalogue itself (which Kiro models exist, the names that map to them, which accounts serve
them) lives with the upstream (upstream/catalog.py); dialects read it through `Catalog` and render
`ModelEntry`s in their own shapes, never touching Kiro's ids or lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["ModelEntry", "Catalog"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: str  # the name clients list and send (Anthropic-style for Claude)
    display: str
    created: int  # epoch seconds, for listings
    context_window: int
    max_output: int
    upstream_id: str  # the model that serves it (shown in descriptions, and "owned_by")


class Catalog(Protocol):
    async def listed(self) -> list[ModelEntry]:
        """The models this gateway can serve now, with the limits its accounts report."""
        ...

    async def describe(self, name: str) -> ModelEntry | None:
        """A client's model name → the model that serves it, when some account can."""
        ...

    def resolve(self, name: str) -> ModelEntry | None:
        """A client's model name → the model it maps to, servable or not (None: no such name)."""
        ...

    async def aliases(self) -> list[tuple[str, ModelEntry]]:
        """The operator's `modelMap` names (not prefix rules) of the models listed."""
        ...

"""The one reading of `stateUrl`: which backend it names, and where. Settings validation and
`make_store` both go through `parse_state_url`, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["StateUrl", "parse_state_url", "REDIS_SCHEMES", "URL_HINT"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_MEMORY = ("memory", "memory://", ":memory:")
_SQLITE = "sqlite:///"
URL_HINT = "redis://…, rediss://…, unix://…, sqlite:///path or memory"


@dataclass(frozen=True, slots=True)
class StateUrl:
    backend: Literal["redis", "sqlite", "memory", "default"]
    url: str  # as given, stripped ("" for the default)
    path: Path | None = None  # the SQLite file (backend "sqlite")

    @property
    def shared(self) -> bool:
        """Whether it names a store other gateway processes can share."""
        return self.backend == "redis"


def parse_state_url(url: str | None) -> StateUrl:
    """Raises ValueError naming the accepted forms (never echoing a password)."""
    u = (url or "").strip()
    if not u:
        return StateUrl("default", "")
    if u.startswith(REDIS_SCHEMES):
        return StateUrl("redis", u)
    if u in _MEMORY:
        return StateUrl("memory", u)
    if u.startswith(_SQLITE) and len(u) > len(_SQLITE):
        return StateUrl("sqlite", u, Path(u[len(_SQLITE):]).expanduser())
    raise ValueError(f"stateUrl must be {URL_HINT} (got {u.split(':', 1)[0]}:…)")

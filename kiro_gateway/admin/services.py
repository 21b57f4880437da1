"""The services the admin API works with, as it needs them (the composition root provides them).

A `Protocol`, not an import of the app: the admin API sits below the composition root and sees
only these. `apply_config` is the file watcher's (re-read config.json after a save); `signed_in`
is the console's session check, when the console is mounted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from starlette.requests import Request

from ..config import Settings
from ..keys.registry import KeyRegistry
from ..login import LoginManager
from ..observe.requestlog import RequestLog
from ..pool.pool import CredentialPool
from ..state.base import StateStore
from ..state.writer import StateWriter
from ..upstream.catalog import ModelCatalog

__all__ = ["AdminServices"]


class AdminServices(Protocol):
    settings: Settings
    config_path: Path | None
    store: StateStore
    pool: CredentialPool
    catalog: ModelCatalog
    logins: LoginManager
    requests: RequestLog
    keys: KeyRegistry
    writer: StateWriter
    apply_config: Callable[[], Awaitable[bool]] | None
    signed_in: Callable[[Request], bool] | None

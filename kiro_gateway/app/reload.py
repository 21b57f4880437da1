"""Hot reload: hand edits of config.json and credentials.json take effect without a restart.

watchfiles reports changes to the two files (inotify where it can; polling their mtime every second
if it cannot start). credentials.json is merged into the pool (pool.reload_file: the file's fields
win, tokens the gateway refreshed meanwhile win by expiry); config.json settings that changed in the
file since it was last read are applied to the live settings — except where to listen and which
state store to use, which need a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from collections.abc import Awaitable, Callable

from ..config import ConfigError, Settings, load_settings
from ..util.tasks import cancel_and_wait

log = logging.getLogger("kiro_gateway.reload")

__all__ = ["FileWatcher", "RESTART_ONLY"]

RESTART_ONLY = {"host", "port", "state_url", "state_namespace", "state_flush_interval", "log_level", "log_format",
                "shutdown_timeout"}
_POLL = 1.0


class FileWatcher:
    def __init__(self, settings: Settings, config_path: Path | None, credentials_path: Path | None,
                 reload_credentials: Callable[[], Awaitable[bool]],
                 settings_changed: Callable[[set[str]], None]) -> None:
        """`reload_credentials`: take in the credentials file (True when it changed);
        `settings_changed`: the names of the settings just applied to `settings`, for whoever
        built something from them (the model catalogue, the sticky sessions) to rebuild it."""
        self.settings = settings
        self.reload_credentials = reload_credentials
        self.settings_changed = settings_changed
        self.config = config_path.resolve() if config_path else None
        self.credentials = credentials_path.resolve() if credentials_path else None
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._last: Settings | None = None  # config.json as last read
        self.reloads = 0

    def start(self) -> None:
        if not self.settings.hot_reload or self._task is not None or not (self.config or self.credentials):
            return
        if self.config is not None and self.config.exists():
            try:
                self._last = load_settings(self.config)
            except ConfigError:
                self._last = None
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kg-file-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._stop is not None:
            self._stop.set()
        await cancel_and_wait(task)

    async def _run(self) -> None:
        try:
            await self._watch()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - no inotify (or too many watches): poll instead
            log.info("file watching unavailable (%s); polling every %g s", type(e).__name__, _POLL)
            await self._poll()

    async def _watch(self) -> None:
        from watchfiles import awatch

        # watchfiles logs "1 change detected" at INFO for every event, the gateway's own
        # write-backs included; what a change did is logged here instead (only when it applied).
        logging.getLogger("watchfiles.main").setLevel(logging.WARNING)
        files = {str(p) for p in (self.config, self.credentials) if p is not None}
        dirs = sorted({str(Path(f).parent) for f in files if Path(f).parent.is_dir()})
        if not dirs:
            raise FileNotFoundError("no directory to watch")
        async for changes in awatch(*dirs, watch_filter=lambda _c, path: path in files, debounce=150, step=30,
                                    stop_event=self._stop, recursive=False):
            await self.apply({Path(p) for _, p in changes})

    async def _poll(self) -> None:
        paths = [p for p in (self.config, self.credentials) if p is not None]
        seen = {p: _stamp(p) for p in paths}
        while True:
            await asyncio.sleep(_POLL)
            changed = set()
            for p in paths:
                stamp = await asyncio.to_thread(_stamp, p)
                if stamp != seen[p]:
                    seen[p] = stamp
                    changed.add(p)
            if changed:
                await self.apply(changed)

    async def apply(self, changed: set[Path]) -> None:
        """Take in whichever of the two files changed; a bad edit is logged and skipped."""
        try:
            if self.credentials in changed and await self.reload_credentials():
                self.reloads += 1
            if self.config in changed and await self.apply_config():
                self.reloads += 1
        except Exception:  # noqa: BLE001 - a reload must never take the gateway down
            log.exception("reload failed")

    async def apply_config(self) -> bool:
        assert self.config is not None
        try:
            new = await asyncio.to_thread(load_settings, self.config)
        except ConfigError as e:
            log.warning("config.json not reloaded: %s", e)
            return False
        old, self._last = self._last, new
        live = self.settings
        changed = [n for n in Settings.model_fields if old is None or getattr(new, n) != getattr(old, n)]
        applied = []
        for name in changed:
            if name in RESTART_ONLY:
                if getattr(new, name) != getattr(live, name):
                    log.warning("config.json: %s changed; it takes effect after a restart", name)
                continue
            setattr(live, name, getattr(new, name))
            applied.append(name)
        if not applied:
            return False
        self.settings_changed(set(applied))
        log.info("config.json reloaded: %s", ", ".join(sorted(applied)))  # names only: values may be secrets
        return True


def _stamp(p: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size

"""Background tasks the gateway runs beside requests (refresher, state writer, file watcher).

None of them may die silently: a failure inside one is given to `failed`, which logs it (once per
task and kind of error, with its traceback, so a loop failing every second does not flood the log),
counts it (`kiro_gateway_background_errors_total` on /metrics), and lets the task go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

__all__ = ["cancel_and_wait", "failed", "ERRORS"]

log = logging.getLogger("kiro_gateway.tasks")

ERRORS: Counter[str] = Counter()  # failures per background task, since the process started
_LOGGED: set[tuple[str, str]] = set()


def failed(task: str, exc: BaseException) -> None:
    """A background task's step failed with `exc`: log (first of its kind only), count, go on."""
    ERRORS[task] += 1
    kind = (task, type(exc).__name__)
    if kind in _LOGGED:
        log.debug("%s failed again: %s", task, type(exc).__name__)
        return
    _LOGGED.add(kind)
    log.error("background task %s failed (%s); it goes on, later failures of this kind are only counted",
              task, type(exc).__name__, exc_info=exc)


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Stop a background task and wait until it has unwound; its failure is not ours to raise."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

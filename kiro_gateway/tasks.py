"""Background tasks the gateway runs beside requests (refresher, state writer, file watcher)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Stop a background task and wait until it has unwound; its failure is not ours to raise."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task

"""Calendar helpers shared by the request log and the client keys' daily limits."""

from __future__ import annotations

import time

__all__ = ["utc_day"]


def utc_day(epoch: float) -> str:
    """The UTC calendar day of `epoch`, as YYYY-MM-DD (the key a day's totals are kept under)."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))

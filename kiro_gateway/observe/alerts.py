"""Account alerts: Kiro's warnings about an account (today "suspicious activity") counted per
credential and reason, and the latest one kept for the admin view while the account rests.

Counts are this process's (a restart starts them at zero), exported as
`kiro_gateway_account_alerts{credential,reason}` on /metrics."""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger(__name__)

COUNTS: Counter[tuple[str, str]] = Counter()
_LATEST: dict[str, tuple[str, float]] = {}  # credential -> (text, shown until)

TEXT = {"SUSPICIOUS_ACTIVITY": "Kiro reports suspicious activity on the account / Kiro 报告该账号存在可疑活动"}


def raise_alert(cid: str, reason: str, until: float) -> None:
    """Count an alert on credential `cid` and show it in the view until `until` (epoch s)."""
    COUNTS[(cid, reason)] += 1
    _LATEST[cid] = (TEXT.get(reason, reason), until)
    log.warning("ALERT credential #%s: %s; it rests until %s", cid, TEXT.get(reason, reason),
                time.strftime("%H:%M:%S", time.gmtime(until)))


def current(cid: str, now: float | None = None) -> str | None:
    """The alert text still in force for `cid`, if any."""
    hit = _LATEST.get(cid)
    if hit is None or hit[1] <= (now or time.time()):
        return None
    return f"alert: {hit[0]}"

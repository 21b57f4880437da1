"""Account alerts: Kiro's warnings about an account (today "suspicious activity") counted per
credential and reason, and the latest one kept for the admin view while the account rests.

One `Alerts` per pool; its counts are this process's (a restart starts them at zero), exported as
`kiro_gateway_account_alerts{credential,reason}` on /metrics."""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger(__name__)

TEXT = {"SUSPICIOUS_ACTIVITY": "Kiro reports suspicious activity on the account / Kiro 报告该账号存在可疑活动"}


class Alerts:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._latest: dict[str, tuple[str, float]] = {}  # credential -> (text, shown until)

    def raise_alert(self, cid: str, reason: str, until: float) -> None:
        """Count an alert on credential `cid` and show it in the view until `until` (epoch s)."""
        self.counts[(cid, reason)] += 1
        self._latest[cid] = (TEXT.get(reason, reason), until)
        log.warning("ALERT credential #%s: %s; it rests until %s", cid, TEXT.get(reason, reason),
                    time.strftime("%H:%M:%S", time.gmtime(until)))

    def current(self, cid: str, now: float | None = None) -> str | None:
        """The alert text still in force for `cid`, if any."""
        hit = self._latest.get(cid)
        if hit is None or hit[1] <= (now or time.time()):
            return None
        return f"alert: {hit[0]}"

"""`/ready`: can this process serve a request now? (`/health` only says it is alive.)

503 when no credential is usable (none, or all disabled or benched as unhealthy) or the state
store does not answer within two seconds; 200 otherwise. Load balancers and Kubernetes read it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..pool.pool import CredentialPool
from ..state.base import StateStore

__all__ = ["readiness"]

_UNUSABLE = ("disabled", "unhealthy")


async def readiness(pool: CredentialPool, store_: StateStore) -> tuple[int, dict[str, Any]]:
    usable = sum(1 for c in pool.candidates() if pool.status(c) not in _UNUSABLE)
    try:
        await asyncio.wait_for(store_.totals(), 2)
        store = "ok"
    except Exception as e:  # noqa: BLE001 - any failure means "not ready"
        store = f"unreachable ({type(e).__name__})"
    ready = usable > 0 and store == "ok"
    problems = ([] if usable else ["no usable credential"]) + ([] if store == "ok" else [f"state store {store}"])
    return (200 if ready else 503), {"ready": ready, "credentials": usable, "store": store, "problems": problems}

"""Which Kiro models the pool can serve, and the error when a requested one cannot be served.

Kiro rolls models out account by account (docs/kiro-protocol.md, "Models"): each account's list
comes from ListAvailableModels (pool/facts.py). A model is never silently swapped for another:
when no account has it, or every account that has it rests, the client is told so by name, with
what is available — unless the operator configured `modelFallbacks`, which upstream.py follows.
"""

from __future__ import annotations

import time
from typing import Protocol

from ..core.conversation import ErrorKind, GatewayError
from ..kiro.models import KIRO_MODELS
from .facts import AccountFacts
from .credential import Credential
from .health import ACTIVE, Health

__all__ = ["ModelUnavailable", "served_models", "check_servable", "unavailable"]

_STATIC = {m.id: (m.context_window, m.max_output) for m in KIRO_MODELS}


class PoolView(Protocol):
    """What this needs of the pool."""

    health: dict[str, Health]

    def candidates(self) -> list[Credential]: ...

    def can_serve(self, cred: Credential, model_id: str | None) -> bool: ...


class ModelUnavailable(GatewayError):
    """No account can serve the model now; `model` is its Kiro id."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None, retry_after: float | None = None,
                 model: str = "") -> None:
        super().__init__(kind, message, status, retry_after)
        self.model = model


def served_models(pool: PoolView, facts: AccountFacts) -> dict[str, tuple[int, int]]:
    """Kiro model id -> (context window, output limit) over every usable account: its own list
    where known (the largest limits any account reports), the built-in catalog where not."""
    out: dict[str, tuple[int, int]] = {}
    for cred in pool.candidates():
        listed = facts.known_models(cred.id)
        if listed is None:
            entries = {mid: lim for mid, lim in _STATIC.items() if pool.can_serve(cred, mid)}
        else:
            entries = {mid: (lim[0] or _STATIC.get(mid, (200_000, 0))[0], lim[1] or _STATIC.get(mid, (0, 64_000))[1])
                       for mid, lim in listed.items() if pool.can_serve(cred, mid)}
        for mid, (win, most) in entries.items():
            have = out.get(mid, (0, 0))
            out[mid] = (max(have[0], win), max(have[1], most))
    return out


def unavailable(pool: PoolView, facts: AccountFacts, model: str, name: str) -> ModelUnavailable:
    """The error for a model no usable account has."""
    have = sorted(served_models(pool, facts))
    listing = ", ".join(have[:20]) + (" …" if len(have) > 20 else "") if have else "none"
    return ModelUnavailable("not_found", f"Model {name!r} (Kiro {model}) is not available on any Kiro account "
                            f"of this gateway. Available models: {listing}.", 404, model=model)


def check_servable(pool: PoolView, facts: AccountFacts, model: str, name: str) -> None:
    """Raise ModelUnavailable when no account has `model`, or when every account that has it
    rests while others (without it) could serve: the model is the problem, say so."""
    creds = pool.candidates()
    if not creds:
        return  # the pool's own error says there are no credentials
    having = [c for c in creds if pool.can_serve(c, model)]
    if not having:
        raise unavailable(pool, facts, model, name)
    now = time.time()
    if any(pool.health[c.id].status(False, now) == ACTIVE for c in having):
        return
    if not any(pool.health[c.id].status(False, now) == ACTIVE for c in creds):
        return  # the whole pool rests: the pool's own rules (the soonest-ready serves)
    ready = min(pool.health[c.id].ready_at() for c in having)
    wait = max(1.0, ready - now) if ready > now else None
    others = sorted(mid for mid in served_models(pool, facts) if mid != model)
    raise ModelUnavailable(
        "rate_limit", f"Model {name!r} (Kiro {model}) is served only by accounts that are resting"
        + (f" for about {int(wait)} s" if wait else "") + f"; try again later, or use another model: "
        + (", ".join(others[:20]) or "none") + ".", 429, retry_after=wait, model=model)

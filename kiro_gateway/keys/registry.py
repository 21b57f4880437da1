"""Named client API keys (besides the single `apiKey`), kept in the state store as hashes.

A key's secret is shown once, when it is made; the store holds its sha256 (the secret is 256 random
bits, so a fast hash is enough) and a hint (`kgk_AbCd…wxyz`) to tell keys apart. Requests are
checked against an in-memory map of hashes; other processes learn of changes by a store notice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..state.base import Batch, Events, StateStore

log = logging.getLogger("kiro_gateway.keys")

__all__ = ["ClientKey", "KeyRegistry", "KeyExists", "KEY_PREFIX"]

KEY_PREFIX = "kgk_"


class KeyExists(ValueError):
    pass


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(slots=True)
class ClientKey:
    id: str
    name: str
    hash: str
    hint: str
    created: float
    rpm: int | None = None  # requests per minute
    tpd: int | None = None  # tokens (in + out) per UTC day
    credential: str | None = None  # pinned: this key's requests go to this credential only

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpd)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClientKey":
        return cls(str(d["id"]), str(d["name"]), str(d["hash"]), str(d.get("hint") or ""),
                   float(d.get("created") or 0), d.get("rpm") or None, d.get("tpd") or None,
                   str(d["credential"]) if d.get("credential") else None)


class KeyRegistry:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._by_hash: dict[str, ClientKey] = {}
        self._by_id: dict[str, ClientKey] = {}
        self._stale = False
        self.wake = lambda: None

    def __len__(self) -> int:
        return len(self._by_id)

    async def load(self) -> None:
        keys = [ClientKey.from_dict(d) for d in await self.store.list_keys()]
        self._by_id = {k.id: k for k in keys}
        self._by_hash = {k.hash: k for k in keys}

    def find(self, secret: str) -> ClientKey | None:
        if not self._by_hash or not secret:
            return None
        return self._by_hash.get(_hash(secret))

    def get(self, key_id: str) -> ClientKey | None:
        return self._by_id.get(key_id)

    def all(self) -> list[ClientKey]:
        return sorted(self._by_id.values(), key=lambda k: (k.created, k.name))

    async def create(self, name: str, rpm: int | None = None, tpd: int | None = None,
                     credential: str | None = None) -> tuple[ClientKey, str]:
        """The new key and its secret (to be shown once, never stored)."""
        await self._fresh()
        if any(k.name == name for k in self._by_id.values()):
            raise KeyExists(f"A key named {name!r} exists already.")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ClientKey(secrets.token_hex(6), name, _hash(secret), f"{secret[:8]}…{secret[-4:]}", time.time(),
                        rpm or None, tpd or None, credential or None)
        await self._save(key)
        return key, secret

    async def update(self, key: ClientKey, **changes: Any) -> ClientKey:
        await self._fresh()
        if "name" in changes and any(k.name == changes["name"] and k.id != key.id for k in self._by_id.values()):
            raise KeyExists(f"A key named {changes['name']!r} exists already.")
        for field, value in changes.items():
            setattr(key, field, (value or None) if field in ("rpm", "tpd", "credential") else value)
        await self._save(key)
        return key

    async def delete(self, key: ClientKey) -> bool:
        found = await self.store.delete_key(key.id)
        self._by_id.pop(key.id, None)
        self._by_hash.pop(key.hash, None)
        if isinstance(self.store, Events):
            await self.store.publish("keys")
        return found

    async def _save(self, key: ClientKey) -> None:
        await self.store.save_key(asdict(key))
        self._by_id[key.id] = key
        self._by_hash[key.hash] = key
        if isinstance(self.store, Events):
            await self.store.publish("keys")

    async def _fresh(self) -> None:
        if self.store.shared:
            await self.load()

    # -- the writer's source protocol: reload when another process changed the keys -------------------

    def on_event(self, topic: str, data: Any) -> None:
        if topic in ("keys", "resync"):
            self._stale = True
            self.wake()

    def collect(self, batch: Batch) -> None:
        return None

    def done(self, batch: Batch, ok: bool) -> None:
        return None

    async def after(self) -> None:
        if self._stale:
            self._stale = False
            await self.load()

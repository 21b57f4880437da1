"""Admin endpoints for named client API keys: create (the secret shown once), list, update, delete."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from ..keys.registry import ClientKey, KeyExists
from ..util.clock import utc_day
from ..pool.credential import format_expiry
from ..state.base import KEY_USAGE_FIELDS, add_vector
from . import schemas as S
from .common import AdminError, _body
from .services import AdminServices

__all__ = ["KeysApi"]


def _usage(vec: list[float] | None) -> dict[str, Any]:
    v = vec or [0.0] * len(KEY_USAGE_FIELDS)
    return {"requests": int(v[0]), "tokensIn": int(v[1]), "tokensOut": int(v[2]), "credits": round(v[3], 4),
            "errors": int(v[4])}


class KeysApi:
    gw: AdminServices

    def _key(self, request: Request) -> ClientKey:
        key = self.gw.keys.get(request.path_params["id"])
        if key is None:
            raise AdminError(404, f"No API key {request.path_params['id']!r}.")
        return key

    async def _usage_by_key(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """(today's usage, the last 7 days') per key id."""
        await self.gw.writer.flush()
        now = time.time()
        days = [utc_day(now - i * 86400) for i in range(7)]
        today = await self.gw.store.key_usage(days[0])
        week: dict[str, list[float]] = {}
        for i, day in enumerate(days):
            for kid, vec in (today if i == 0 else await self.gw.store.key_usage(day)).items():
                add_vector(week.setdefault(kid, [0.0] * len(KEY_USAGE_FIELDS)), vec)
        return today, week

    @staticmethod
    def _view(key: ClientKey, today: dict[str, list[float]], week: dict[str, list[float]]) -> dict[str, Any]:
        return {"id": key.id, "name": key.name, "hint": key.hint, "createdAt": format_expiry(key.created),
                "requestsPerMinute": key.rpm, "tokensPerDay": key.tpd, "credential": key.credential,
                "usageToday": _usage(today.get(key.id)),
                "usageLast7Days": _usage(week.get(key.id))}

    async def list_keys(self, request: Request):
        await self.gw.keys.after()  # changes another process announced
        today, week = await self._usage_by_key()
        return {"keys": [self._view(k, today, week) for k in self.gw.keys.all()]}

    async def create_key(self, request: Request):
        body: S.KeyCreate = await _body(request, S.KeyCreate)
        try:
            key, secret = await self.gw.keys.create(body.name, body.requestsPerMinute, body.tokensPerDay,
                                                    self._pin(body.credential))
        except KeyExists as e:
            raise AdminError(409, str(e)) from None
        return 201, {**self._view(key, {}, {}), "key": secret}

    async def update_key(self, request: Request):
        key = self._key(request)
        body: S.KeyUpdate = await _body(request, S.KeyUpdate)
        sent = body.model_fields_set
        changes: dict[str, Any] = {}
        if "name" in sent:
            if body.name is None:
                raise AdminError(400, "Invalid request: name: cannot be null.")
            changes["name"] = body.name
        if "requestsPerMinute" in sent:
            changes["rpm"] = body.requestsPerMinute
        if "tokensPerDay" in sent:
            changes["tpd"] = body.tokensPerDay
        if "credential" in sent:
            changes["credential"] = self._pin(body.credential)
        try:
            key = await self.gw.keys.update(key, **changes)
        except KeyExists as e:
            raise AdminError(409, str(e)) from None
        today, week = await self._usage_by_key()
        return self._view(key, today, week)

    def _pin(self, cid: str | None) -> str | None:
        if cid and self.gw.pool.get(cid) is None:
            raise AdminError(400, f"Invalid request: credential: no credential #{cid}.")
        return cid or None

    async def delete_key(self, request: Request):
        key = self._key(request)
        await self.gw.keys.delete(key)
        return {"success": True, "message": f"API key {key.name!r} deleted."}

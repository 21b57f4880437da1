"""What every admin endpoint shares: its error type, JSON bodies validated by a model, query values."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..web.http import MAX_BODY, JSONResponse
from ..pool.credential import Credential, format_expiry, parse_expiry

__all__ = ["AdminError", "_error", "_iso", "_id", "_body", "query_int", "query_float"]

_STATUS_TYPES = {400: "invalid_request", 401: "authentication_error", 404: "not_found", 409: "conflict",
                 502: "api_error", 500: "internal_error", 503: "unavailable"}


class AdminError(Exception):
    def __init__(self, status: int, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or _STATUS_TYPES.get(status, "api_error")


def _error(status: int, message: str, type_: str | None = None) -> Response:
    return JSONResponse({"error": {"type": type_ or _STATUS_TYPES.get(status, "api_error"), "message": message}},
                        status_code=status)


def _iso(epoch: float | None) -> str | None:
    return format_expiry(epoch) if epoch else None


def _id(cred: Credential) -> int | str:
    return int(cred.id) if cred.id.isdigit() else cred.id


async def _body(request: Request, model: type[BaseModel], optional: bool = False) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise AdminError(400, "Request body too large.")
    if not raw.strip():
        if optional:
            return model()
        raise AdminError(400, "A JSON object body is required.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise AdminError(400, f"The request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise AdminError(400, "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as e:  # messages name the field, never echo its value
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())
        raise AdminError(400, f"Invalid request: {problems}") from None


def query_int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi], or a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AdminError(400, f"{name} must be an integer.") from None
    if not lo <= value <= hi:
        raise AdminError(400, f"{name} must be between {lo} and {hi}.")
    return value


def query_float(request: Request, name: str) -> float | None:
    """A time query parameter: epoch seconds or RFC 3339, or a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = parse_expiry(raw)
    if value is None:
        raise AdminError(400, f"{name} must be epoch seconds or an RFC 3339 time.")
    return value

"""HTTP helpers every route uses: a fast JSON response, body reading, errors in a dialect's shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .conversation import GatewayError

if TYPE_CHECKING:
    from .dialects.base import Dialect

__all__ = ["JSONResponse", "read_json", "raw_body", "error_response", "MAX_BODY"]

MAX_BODY = 32 * 1024 * 1024


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


async def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400/413 GatewayError saying what is wrong with it."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise GatewayError("invalid_request", f"Request body too large (limit {MAX_BODY} bytes).", 413)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise GatewayError("invalid_request", f"Request body too large (limit {MAX_BODY} bytes).", 413)
    if not raw:
        raise GatewayError("invalid_request", "The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise GatewayError("invalid_request", f"The request body is not valid JSON: {e}") from e


def raw_body(request: Request) -> bytes | None:
    """The bytes `read_json` parsed, while Starlette still caches them on the request."""
    return request.__dict__.get("_body")


def error_response(dialect: "Dialect", err: GatewayError) -> Response:
    status, body = dialect.error(err)
    headers = {}
    if err.retry_after:
        headers["retry-after"] = str(int(err.retry_after + 0.999))
    return JSONResponse(body, status_code=status, headers=headers)

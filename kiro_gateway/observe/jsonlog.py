"""`logFormat: json`: one JSON object a line, for log shippers (journald, Loki, CloudWatch).

Each line: time, level, logger, message, and — inside a request — its id (the same id as its row
in the request log) and the credential serving it. Messages pass the same redaction as request log
bodies (token-like strings, key query parameters), so no secret reaches a line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from ..core.trace import CURRENT
from .record import request_id
from .redact import _text, redact_query

__all__ = ["JsonFormatter", "install", "request_id"]

class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string still gives a line
            message = str(record.msg)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _text(redact_query(message), ()),
        }
        rec = getattr(record, "kg_record", None) or CURRENT.get()
        if rec is not None:
            out["requestId"] = request_id(rec)
            if rec.credential is not None:
                out["credential"] = rec.credential
        if record.exc_info:
            out["error"] = _text(self.formatException(record.exc_info), ())
        return orjson.dumps(out).decode()


def install(level: str) -> None:
    """The root logger and uvicorn's loggers write JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True

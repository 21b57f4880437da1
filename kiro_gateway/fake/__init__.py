"""The fake Kiro server: tests, benchmark and demo mode run against it (see server.py)."""

from .server import DEFAULT_MODELS, FakeKiro, main, run
from .validation import validate_request

__all__ = ["FakeKiro", "DEFAULT_MODELS", "main", "run", "validate_request"]

"""The composition root: builds every service once and hands each route the narrow ones it needs."""

from .gateway import create_app

__all__ = ["create_app"]

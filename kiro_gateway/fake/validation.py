"""What the fake Kiro rejects: Kiro's request rules (kiro/rules.py), which the gateway also uses to
explain Kiro's "Improperly formed request." to its clients."""

from __future__ import annotations

from ..kiro.rules import IMAGE_FORMATS, MAX_BODY_BYTES, RULES, diagnose, validate_request

__all__ = ["validate_request", "diagnose", "RULES", "MAX_BODY_BYTES", "IMAGE_FORMATS"]

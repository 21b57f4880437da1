"""Client model names → Kiro model ids, and what we know about each Kiro model (docs/kiro-protocol.md, “Models”).

Names are mapped by family and version rather than by a fixed list, so a name the gateway has
never seen (`claude-opus-4-9-20270101`, `claude-sonnet-5`) still lands on a sensible Kiro model:
the exact version when Kiro has it, else the newest known model of that family. A table in
config (`modelMap`) overrides anything here, exactly or by prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["KiroModel", "KIRO_MODELS", "ModelMapper", "UnknownModel", "catalog", "model_info"]


@dataclass(frozen=True, slots=True)
class KiroModel:
    id: str  # Kiro modelId
    family: str  # sonnet | opus | haiku | other
    version: tuple[int, ...]
    context_window: int
    display: str
    created: int  # for /v1/models listings
    client_id: str  # the Anthropic-style name we list it under
    max_output: int = 64_000  # tokens; an account's ListAvailableModels tokenLimits say better


# Newest first within each family. Windows as Kiro's ListAvailableModels reports them
# (docs/kiro-protocol.md, "Models"); the account's own list wins where it has one.
KIRO_MODELS: tuple[KiroModel, ...] = (
    KiroModel("claude-opus-5", "opus", (5, 0), 666_667, "Claude Opus 5", 1800000000, "claude-opus-5", 128_000),
    KiroModel("claude-opus-4.8", "opus", (4, 8), 1_000_000, "Claude Opus 4.8", 1790000000, "claude-opus-4-8"),
    KiroModel("claude-opus-4.7", "opus", (4, 7), 1_000_000, "Claude Opus 4.7", 1780000000, "claude-opus-4-7"),
    KiroModel("claude-opus-4.6", "opus", (4, 6), 1_000_000, "Claude Opus 4.6", 1770163200, "claude-opus-4-6"),
    KiroModel("claude-opus-4.5", "opus", (4, 5), 200_000, "Claude Opus 4.5", 1763942400, "claude-opus-4-5-20251101"),
    KiroModel("claude-sonnet-5", "sonnet", (5, 0), 1_000_000, "Claude Sonnet 5", 1795000000, "claude-sonnet-5"),
    KiroModel("claude-sonnet-4.6", "sonnet", (4, 6), 1_000_000, "Claude Sonnet 4.6", 1771286400, "claude-sonnet-4-6"),
    KiroModel("claude-sonnet-4.5", "sonnet", (4, 5), 200_000, "Claude Sonnet 4.5", 1759104000, "claude-sonnet-4-5-20250929"),
    KiroModel("claude-sonnet-4", "sonnet", (4, 0), 200_000, "Claude Sonnet 4", 1747267200, "claude-sonnet-4-20250514"),
    KiroModel("claude-haiku-4.5", "haiku", (4, 5), 200_000, "Claude Haiku 4.5", 1760486400, "claude-haiku-4-5-20251001"),
    KiroModel("auto", "other", (), 1_000_000, "Auto", 1760000000, "auto"),
    KiroModel("glm-5", "other", (), 200_000, "GLM-5", 1770000000, "glm-5", 32_000),
    KiroModel("deepseek-3.2", "other", (), 128_000, "DeepSeek 3.2", 1765000000, "deepseek-3.2", 32_000),
    KiroModel("minimax-m2.5", "other", (), 200_000, "MiniMax M2.5", 1772000000, "minimax-m2.5", 32_000),
    KiroModel("minimax-m2.1", "other", (), 200_000, "MiniMax M2.1", 1766000000, "minimax-m2.1", 32_000),
    KiroModel("qwen3-coder-next", "other", (), 256_000, "Qwen3 Coder Next", 1771000000, "qwen3-coder-next"),
)

_BY_ID = {m.id: m for m in KIRO_MODELS}
_FAMILIES = ("opus", "sonnet", "haiku")
# Kiro ids that are not claude-{family}-{version} but that clients may name directly.
_PASSTHROUGH = {
    "CLAUDE_SONNET_4_5_20250929_V1_0",
    "CLAUDE_SONNET_4_20250514_V1_0",
    "CLAUDE_3_7_SONNET_20250219_V1_0",
}
_LEGACY_3_7 = "CLAUDE_3_7_SONNET_20250219_V1_0"
# Readable names of the models that are not Claude, as people write them -> Kiro id.
_ALIASES = {
    "glm5": "glm-5", "glm-5.0": "glm-5", "zai-glm-5": "glm-5",
    "deepseek-v3.2": "deepseek-3.2", "deepseek3.2": "deepseek-3.2", "deepseek-3-2": "deepseek-3.2",
    "minimax-m2-5": "minimax-m2.5", "minimax-m2-1": "minimax-m2.1",
    "qwen3-coder": "qwen3-coder-next", "qwen-3-coder-next": "qwen3-coder-next",
}
_LOWER_IDS = {m.id.lower(): m.id for m in KIRO_MODELS}

# claude-opus-4-8, claude-opus-4.8, claude-opus-4-8-20260101, claude-4-opus, claude-3-7-sonnet-latest
_VERSION = re.compile(r"(?<![0-9])(\d{1,2})(?:[.-](\d{1,2}))?(?![0-9])")
_DATE = re.compile(r"-20\d{6}\b|-latest\b")


def model_info(kiro_id: str) -> KiroModel:
    """What we know of a Kiro model; a model Kiro lists that we have never heard of, by its id."""
    return _BY_ID.get(kiro_id) or KiroModel(kiro_id, "other", (), 200_000, kiro_id, 0, kiro_id)


def catalog(served: dict[str, Any] | None = None) -> list[KiroModel]:
    """The built-in catalog, or (given `served`, Kiro ids) those models and any others Kiro lists."""
    if served is None:
        return list(KIRO_MODELS)
    return [m for m in KIRO_MODELS if m.id in served] + [model_info(i) for i in sorted(served) if i not in _BY_ID]


class UnknownModel(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Resolved:
    kiro_id: str
    context_window: int
    force_thinking: bool  # the name asked for thinking (…-thinking)


class ModelMapper:
    def __init__(self, overrides: dict[str, str] | None = None, default: str | None = None) -> None:
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.default = default  # used for names of no known family, e.g. "gpt-4o" (None = reject)
        self._resolve = lru_cache(maxsize=1024)(self._resolve_uncached)

    def resolve(self, name: str) -> Resolved:
        return self._resolve(name)

    def context_window(self, kiro_id: str) -> int:
        m = _BY_ID.get(kiro_id)
        return m.context_window if m else 200_000

    def _resolve_uncached(self, name: str) -> Resolved:
        raw = name.strip()
        low = raw.lower()
        # Bracket suffixes some clients add ("[1m]"), and a models/ prefix (Gemini style).
        low = re.sub(r"\[[^\]]*\]$", "", low).removeprefix("models/")
        thinking = low.endswith("-thinking") or "-thinking-" in low
        base = low.replace("-thinking", "")
        for key in (low, base):
            if key in self.overrides:
                return self._result(self.overrides[key], thinking)
        for key, target in self.overrides.items():
            if key.endswith("*") and base.startswith(key[:-1]):
                return self._result(target, thinking)
        if raw in _PASSTHROUGH or raw in _BY_ID:
            return self._result(raw, thinking)
        if base in _LOWER_IDS and _BY_ID[_LOWER_IDS[base]].family == "other":
            return self._result(_LOWER_IDS[base], thinking)
        if base in _ALIASES:
            return self._result(_ALIASES[base], thinking)
        family = next((f for f in _FAMILIES if f in base), None)
        if family is None:
            if self.default:
                return self._result(self.default, thinking)
            raise UnknownModel(f"model {name!r} is not a Claude model this gateway can map")
        version = _version_of(_DATE.sub("", base))
        if family == "sonnet" and version[:1] == (3,):
            return self._result(_LEGACY_3_7, thinking)
        candidates = [m for m in KIRO_MODELS if m.family == family]
        exact = [m for m in candidates if m.version == version]
        if exact:
            return self._result(exact[0].id, thinking)
        if version and version[0] == 4 and len(version) == 1:
            # "claude-sonnet-4" / "claude-opus-4": the 4.0 model when Kiro has it, else newest 4.x
            zero = [m for m in candidates if m.version == (4, 0)]
            return self._result((zero or candidates)[0].id, thinking)
        # A version Kiro does not list (newer, or older than Kiro keeps): the newest of the family.
        return self._result(candidates[0].id, thinking)

    def _result(self, kiro_id: str, thinking: bool) -> Resolved:
        return Resolved(kiro_id, self.context_window(kiro_id), thinking)


def _version_of(name: str) -> tuple[int, ...]:
    m = _VERSION.search(name)
    if not m:
        return ()
    major = int(m.group(1))
    if m.group(2) is None:
        return (major,)
    return (major, int(m.group(2)))

"""The fake Kiro's model catalog (with token limits) and its named 2026 error answers.

Facts behind both are in docs/kiro-protocol.md ("Models" and "Errors and throttling").
"""

from __future__ import annotations

import orjson

__all__ = ["MODEL_LIMITS", "model_limits", "window_of", "model_entry", "ERRORS", "named_error", "INVALID_MODEL"]

# Kiro model id -> (display name, maxInputTokens, maxOutputTokens).
MODEL_LIMITS: dict[str, tuple[str, int, int]] = {
    "auto": ("Auto", 1_000_000, 64_000),
    "claude-opus-5": ("Claude Opus 5", 666_667, 128_000),
    "claude-opus-4.8": ("Claude Opus 4.8", 1_000_000, 64_000),
    "claude-opus-4.7": ("Claude Opus 4.7", 1_000_000, 64_000),
    "claude-opus-4.6": ("Claude Opus 4.6", 1_000_000, 64_000),
    "claude-opus-4.5": ("Claude Opus 4.5", 200_000, 64_000),
    "claude-sonnet-5": ("Claude Sonnet 5", 1_000_000, 64_000),
    "claude-sonnet-4.6": ("Claude Sonnet 4.6", 1_000_000, 64_000),
    "claude-sonnet-4.5": ("Claude Sonnet 4.5", 200_000, 64_000),
    "claude-sonnet-4": ("Claude Sonnet 4", 200_000, 64_000),
    "claude-haiku-4.5": ("Claude Haiku 4.5", 200_000, 64_000),
    "glm-5": ("GLM-5", 200_000, 32_000),
    "deepseek-3.2": ("DeepSeek 3.2", 128_000, 32_000),
    "minimax-m2.1": ("MiniMax M2.1", 200_000, 32_000),
    "minimax-m2.5": ("MiniMax M2.5", 200_000, 32_000),
    "qwen3-coder-next": ("Qwen3 Coder Next", 256_000, 64_000),
}


def model_limits(model_id: str) -> tuple[int, int]:
    entry = MODEL_LIMITS.get(model_id)
    return (entry[1], entry[2]) if entry else (200_000, 64_000)


def window_of(model_id: str, limits: dict | None = None) -> int:
    """maxInputTokens of a model (with an account's override)."""
    return int((limits or {}).get("maxInputTokens", model_limits(model_id)[0]))


def model_entry(model_id: str, name: str, limits: dict | None = None) -> dict:
    """One ListAvailableModels entry; `limits` ({maxInputTokens, maxOutputTokens}) overrides."""
    max_in, max_out = model_limits(model_id)
    if limits:
        max_in = int(limits.get("maxInputTokens", max_in))
        max_out = int(limits.get("maxOutputTokens", max_out))
    entry = {
        "modelId": model_id,
        "modelName": name,
        "description": f"{name} (fake Kiro)",
        "rateMultiplier": 1.0,
        "rateUnit": "Credit",
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "tokenLimits": {"maxInputTokens": max_in, "maxOutputTokens": max_out},
    }
    if model_id.startswith("claude-"):
        entry["additionalModelRequestFieldsSchema"] = {
            "type": "object",
            "properties": {"thinking": {"type": "object", "properties": {"type": {"enum": ["enabled", "adaptive"]}}}},
        }
    return entry


_THROTTLING = "com.amazon.aws.codewhisperer#ThrottlingException"
INVALID_MODEL = orjson.dumps(
    {"message": "Invalid model. Please select a different model to continue.", "reason": "INVALID_MODEL_ID",
     "__type": "com.amazon.aws.codewhisperer#ValidationException"}
)

# Named answers a script (or an account's `fail_with`) can ask for: name -> (status, body).
ERRORS: dict[str, tuple[int, dict]] = {
    "USER_REQUEST_RATE_EXCEEDED": (429, {
        "__type": _THROTTLING, "reason": "USER_REQUEST_RATE_EXCEEDED",
        "message": "You have exceeded the request rate. Please slow down and try again."}),
    "INSUFFICIENT_MODEL_CAPACITY": (429, {
        "__type": _THROTTLING, "reason": "INSUFFICIENT_MODEL_CAPACITY",
        "message": "There is insufficient capacity for the requested model. Please try again later."}),
    "SUSPICIOUS_ACTIVITY": (429, {
        "__type": _THROTTLING, "reason": None,
        "message": "We detected suspicious activity on your account. Access is temporarily limited."}),
    "HIGH_TRAFFIC": (429, {
        "__type": _THROTTLING, "reason": None,
        "message": "We are experiencing a high volume of traffic. Please try again shortly."}),
    # Kiro once answered an exhausted account with a bare throttle; only the usage shows the truth.
    "CREDITS_AS_THROTTLING": (429, {
        "__type": _THROTTLING, "reason": None, "message": "Your request was throttled by the service."}),
    "MONTHLY_REQUEST_COUNT": (402, {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}),
    "MONTHLY_REQUEST_COUNT_NESTED": (402, {
        "error": {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}}),
    "INVALID_MODEL_ID": (400, orjson.loads(INVALID_MODEL)),
    "MODEL_TEMPORARILY_UNAVAILABLE": (503, {
        "message": "The model is temporarily unavailable due to unexpectedly high load.",
        "reason": "MODEL_TEMPORARILY_UNAVAILABLE"}),
}


def named_error(name: str) -> tuple[int, dict]:
    try:
        return ERRORS[name]
    except KeyError:
        raise ValueError(f"unknown error {name!r}; known: {sorted(ERRORS)}") from None

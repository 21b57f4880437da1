"""Gemini generateContent request → Conversation.

Accepts what the google-genai SDKs and Gemini CLI send (as seen from google-genai and Gemini CLI; tests/e2e/test_genai_sdk.py, tests/e2e/test_gemini_cli.py): `systemInstruction`
with role "user", OpenAPI-style upper-case schemas, `parametersJsonSchema`, function calls and
responses with or without ids, echoed `thoughtSignature`s, and field names in camelCase or
snake_case (proto JSON accepts both). Anything malformed is a 400 naming the field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from ...core.conversation import (
    Conversation,
    GatewayError,
    ImagePart,
    Message,
    Part,
    TextPart,
    Thinking,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    WebSearchTool,
)
from ..blocks import Wording, entries
from .schema import to_json_schema
from .thoughts import decode_signature

__all__ = ["GeminiConversation", "parse_request", "bad", "strip_model"]

_EFFORT = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
_TEXT_MIME = ("text/", "application/json", "application/xml", "application/x-yaml")
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


@dataclass(slots=True)
class GeminiConversation(Conversation):
    """The neutral conversation plus what only the Gemini renderer needs."""

    include_thoughts: bool = False


def bad(where: str, what: str) -> GatewayError:
    return GatewayError("invalid_request", f"Invalid value at '{where}': {what}" if where else what)


# Parts arrays reach the walk already checked to be lists (`_list`), so only its entries' wording counts.
_WORDING = Wording(bad, "must be a list", "must be an object")


def strip_model(name: str) -> str:
    return name.removeprefix("models/")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


_SNAKE: dict[str, str] = {}


def _get(d: dict, key: str) -> Any:
    """d[key], or its snake_case spelling (proto JSON accepts both)."""
    v = d.get(key)
    if v is not None:
        return v
    snake = _SNAKE.get(key)
    if snake is None:
        snake = _SNAKE.setdefault(key, _snake(key))
    return d.get(snake)


def _obj(v: Any, where: str, required: bool = False) -> dict:
    if isinstance(v, dict):
        return v
    if v is None and not required:
        return {}
    raise bad(where, "is required" if v is None else "must be an object")


def _str(v: Any, where: str) -> str:
    if isinstance(v, str):
        return v
    raise bad(where, "is required" if v is None else "must be a string")


def _list(v: Any, where: str) -> list:
    if v is None:
        return []
    if isinstance(v, list):
        return v
    raise bad(where, "must be a list")


def _int(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")) \
            or v != int(v):
        raise bad(where, "must be an integer")
    if not -2**31 <= v < 2**31:  # Gemini's integers are int32
        raise bad(where, "must be an integer in the int32 range")
    return int(v)


# ---------------------------------------------------------------------------------------------
# Parts


class _Pairing:
    """Tool-call ids: given ones are kept; missing ones are synthesised from the call's position
    (stable, since clients resend the whole history) and responses without ids take the first
    unanswered call of the same name in the model turn(s) before them."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[list] = []  # [id, name, answered]

    def new_model_turn(self) -> None:
        self.calls = []

    def call(self, given: Any, name: str, ci: int, pi: int) -> str:
        cid = given if isinstance(given, str) and given else f"call_{ci}_{pi}"
        self.calls.append([cid, name, False])
        return cid

    def response(self, given: Any, name: str, ci: int, pi: int) -> str:
        if isinstance(given, str) and given:
            for c in self.calls:
                if c[0] == given and not c[2]:
                    c[2] = True
                    return given
        for c in self.calls:
            if c[1] == name and not c[2]:
                c[2] = True
                return c[0]
        # Nothing to answer: kept as an orphan, which the Kiro request turns into text.
        return given if isinstance(given, str) and given else f"response_{ci}_{pi}"


def _inline(part: dict, where: str) -> ImagePart | TextPart:
    data = _obj(_get(part, "inlineData"), f"{where}.inlineData")
    mime = _str(_get(data, "mimeType"), f"{where}.inlineData.mimeType").lower()
    b64 = _str(data.get("data"), f"{where}.inlineData.data")
    if mime.startswith("image/"):
        return ImagePart(mime, b64)
    if mime.startswith(_TEXT_MIME):
        try:
            return TextPart(base64.b64decode(b64, validate=False).decode("utf-8", "replace"))
        except (binascii.Error, ValueError) as e:
            raise bad(f"{where}.inlineData.data", "is not valid base64") from e
    raise bad(f"{where}.inlineData.mimeType", f"{mime!r} is not supported through Kiro, which "
              "accepts images (png, jpeg, gif, webp) and text only.")


def _args(v: Any, where: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise bad(where, "must be an object")
    return v


def _response_content(resp: Any) -> tuple[str, bool]:
    """A functionResponse's `response` as tool-result text; `{"error": ...}` marks a failure."""
    if isinstance(resp, dict):
        if set(resp) == {"output"} and isinstance(resp["output"], str):
            return resp["output"], False
        if set(resp) == {"error"}:
            err = resp["error"]
            return (err if isinstance(err, str) else orjson.dumps(err).decode()), True
    if isinstance(resp, str):
        return resp, False
    return orjson.dumps(resp).decode() if resp is not None else "", False


def _function_response(part: dict, where: str, pairing: _Pairing, ci: int, pi: int) -> ToolResultPart:
    fr = _obj(_get(part, "functionResponse"), f"{where}.functionResponse")
    name = _str(fr.get("name"), f"{where}.functionResponse.name")
    content, is_error = _response_content(fr.get("response"))
    images: list[ImagePart] = []
    for j, p in enumerate(_list(fr.get("parts"), f"{where}.functionResponse.parts")):
        if isinstance(p, dict) and _get(p, "inlineData") is not None:
            inner = _inline(p, f"{where}.functionResponse.parts[{j}]")
            if isinstance(inner, ImagePart):
                images.append(inner)
            else:
                content += "\n" + inner.text
    return ToolResultPart(pairing.response(fr.get("id"), name, ci, pi), content, is_error, images)


def _other_part(part: dict, where: str) -> Part:
    if _get(part, "inlineData") is not None:
        return _inline(part, where)
    code = _get(part, "executableCode")
    if isinstance(code, dict):
        return TextPart(f"```{str(code.get('language', '')).lower()}\n{code.get('code', '')}\n```")
    result = _get(part, "codeExecutionResult")
    if isinstance(result, dict):
        return TextPart(f"[code execution {result.get('outcome', '')}]\n{result.get('output', '')}")
    if _get(part, "fileData") is not None:
        raise bad(f"{where}.fileData", "file URIs are not supported through Kiro: send the file's "
                  "bytes as inlineData instead.")
    raise bad(where, "a part needs one of text, inlineData, functionCall or functionResponse")


def _model_parts(parts: list, where: str, ci: int, pairing: _Pairing) -> list[Part]:
    out: list[Part] = []
    signed: list[tuple[str, str]] = []
    for pi, w, p in entries(parts, f"{where}.parts", _WORDING):
        sig = _get(p, "thoughtSignature")
        text = decode_signature(sig)
        if text and all(t != text for _, t in signed):
            signed.append((sig, text))
        if "text" in p:
            t = _str(p["text"], f"{w}.text")
            if p.get("thought") is True:
                out.append(ThinkingPart(t, sig if isinstance(sig, str) else None))
            elif t:
                out.append(TextPart(t))
        elif _get(p, "functionCall") is not None:
            fc = _obj(_get(p, "functionCall"), f"{w}.functionCall")
            name = _str(fc.get("name"), f"{w}.functionCall.name")
            args = _args(fc.get("args"), f"{w}.functionCall.args")
            out.append(ToolCallPart(pairing.call(fc.get("id"), name, ci, pi), name, args))
        elif _get(p, "functionResponse") is not None:
            raise bad(f"{w}.functionResponse", "function responses belong in a user turn")
        elif sig is not None and len(p) == 1:
            continue  # a bare signature part: its thinking is restored below
        else:
            out.append(_other_part(p, w))
    # Gemini CLI keeps only the signatures; put the reasoning they carry back in front.
    if signed and not any(isinstance(p, ThinkingPart) and p.text for p in out):
        out = [ThinkingPart(text, sig) for sig, text in signed] + out
    return out


def _user_parts(parts: list, where: str, ci: int, pairing: _Pairing) -> list[Part]:
    out: list[Part] = []
    for pi, w, p in entries(parts, f"{where}.parts", _WORDING):
        if "text" in p:
            t = _str(p["text"], f"{w}.text")
            if t:
                out.append(TextPart(t))
        elif _get(p, "functionResponse") is not None:
            out.append(_function_response(p, w, pairing, ci, pi))
        elif _get(p, "functionCall") is not None:
            fc = _obj(_get(p, "functionCall"), f"{w}.functionCall")
            out.append(TextPart(f"[function call {fc.get('name')}: {orjson.dumps(fc.get('args')).decode()}]"))
        elif _get(p, "thoughtSignature") is not None and len(p) == 1:
            continue
        else:
            out.append(_other_part(p, w))
    return out


def _contents(raw: Any, counting: bool) -> list[Message]:
    if isinstance(raw, dict):  # a single Content: accepted for convenience
        raw = [raw]
    if raw is None or raw == []:
        if counting:
            return []
        raise bad("contents", "contents is not specified")
    if not isinstance(raw, list):
        raise bad("contents", "must be a list of Content objects")
    pairing = _Pairing()
    messages: list[Message] = []
    last_role = "user"
    for ci, c in enumerate(raw):
        w = f"contents[{ci}]"
        if isinstance(c, str):  # a bare string is a user turn
            messages.append(Message("user", [TextPart(c)] if c else []))
            last_role = "user"
            continue
        if not isinstance(c, dict):
            raise bad(w, "must be an object")
        role = c.get("role") or "user"
        parts = _list(c.get("parts"), f"{w}.parts")
        if not parts:  # Gemini: "contents.parts must not be empty"
            raise bad(f"{w}.parts", "must not be empty")
        if role == "model":
            if last_role != "model":
                pairing.new_model_turn()
            messages.append(Message("assistant", _model_parts(parts, w, ci, pairing)))
        elif role in ("user", "function"):  # "function": the pre-2024 role of functionResponse turns
            messages.append(Message("user", _user_parts(parts, w, ci, pairing)))
        else:
            raise bad(f"{w}.role", "Please use a valid role: user, model.")
        last_role = "model" if role == "model" else "user"
    return messages


# ---------------------------------------------------------------------------------------------
# Request-level fields


def _system(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    parts = raw if isinstance(raw, list) else _list(_obj(raw, "systemInstruction").get("parts"),
                                                     "systemInstruction.parts")
    texts = []
    for i, p in enumerate(parts):
        if isinstance(p, str):
            texts.append(p)
        elif isinstance(p, dict) and "text" in p:
            texts.append(_str(p["text"], f"systemInstruction.parts[{i}].text"))
        else:
            raise bad(f"systemInstruction.parts[{i}]", "only text parts are supported here")
    return "\n".join(t for t in texts if t)


def _search(t: dict, where: str) -> WebSearchTool | None:
    """A `googleSearch` (or the older `googleSearchRetrieval`) tool: answered through Kiro's MCP
    web_search (docs/kiro-protocol.md, “Server tools, MCP and web search”)."""
    for key in ("googleSearch", "googleSearchRetrieval"):
        found = _get(t, key)
        if found is not None:
            exclude = _list(_get(_obj(found, f"{where}.{key}"), "excludeDomains"), f"{where}.{key}.excludeDomains")
            if not all(isinstance(d, str) for d in exclude):
                raise bad(f"{where}.{key}.excludeDomains", "must be a list of strings")
            return WebSearchTool(blocked_domains=list(exclude))
    return None


def _tools(raw: Any) -> tuple[list[Tool], WebSearchTool | None]:
    """The function declarations, and Google Search if a tool asks for it."""
    out: list[Tool] = []
    search = None
    for i, t in enumerate(_list(raw, "tools")):
        if not isinstance(t, dict):
            raise bad(f"tools[{i}]", "must be an object")
        search = _search(t, f"tools[{i}]") or search
        # codeExecution, urlContext…: Google-hosted tools Kiro cannot run; dropped.
        for j, fd in enumerate(_list(_get(t, "functionDeclarations"), f"tools[{i}].functionDeclarations")):
            w = f"tools[{i}].functionDeclarations[{j}]"
            fd = _obj(fd, w, required=True)
            name = _str(fd.get("name"), f"{w}.name")
            if not name:
                raise bad(f"{w}.name", "must not be empty")
            desc = fd.get("description")
            if desc is not None and not isinstance(desc, str):
                raise bad(f"{w}.description", "must be a string")
            schema = _get(fd, "parametersJsonSchema")
            where = f"{w}.parametersJsonSchema"
            if schema is None:
                schema, where = fd.get("parameters"), f"{w}.parameters"
            if schema is not None and not isinstance(schema, dict):
                raise bad(where, "must be an object")
            out.append(Tool(name, desc or "", to_json_schema(schema) if schema else dict(_EMPTY_SCHEMA)))
    return out, search


def _tool_choice(raw: Any, tools: list[Tool]) -> tuple[ToolChoice, list[Tool]]:
    cfg = _obj(_get(_obj(raw, "toolConfig"), "functionCallingConfig"), "toolConfig.functionCallingConfig")
    mode = cfg.get("mode") or "AUTO"
    if not isinstance(mode, str):
        raise bad("toolConfig.functionCallingConfig.mode", "must be a string")
    mode = mode.upper()
    allowed = _list(_get(cfg, "allowedFunctionNames"), "toolConfig.functionCallingConfig.allowedFunctionNames")
    if not all(isinstance(n, str) for n in allowed):
        raise bad("toolConfig.functionCallingConfig.allowedFunctionNames", "must be a list of strings")
    if mode in ("AUTO", "VALIDATED", "MODE_UNSPECIFIED"):
        return ToolChoice("auto"), tools
    if mode == "NONE":
        return ToolChoice("none"), tools
    if mode != "ANY":
        raise bad("toolConfig.functionCallingConfig.mode", "must be one of AUTO, ANY, NONE, VALIDATED")
    if len(allowed) == 1:
        return ToolChoice("tool", allowed[0]), tools
    if allowed:  # Kiro cannot restrict the choice: offer only the allowed tools
        kept = [t for t in tools if t.name in allowed]
        return ToolChoice("any"), kept or tools
    return ToolChoice("any"), tools


def _thinking(cfg: dict) -> tuple[Thinking, bool]:
    tc = _obj(_get(cfg, "thinkingConfig"), "generationConfig.thinkingConfig")
    include = _get(tc, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise bad("generationConfig.thinkingConfig.includeThoughts", "must be a boolean")
    budget = _int(_get(tc, "thinkingBudget"), "generationConfig.thinkingConfig.thinkingBudget")
    level = _get(tc, "thinkingLevel")
    if budget is not None:
        if budget == 0:
            return Thinking(), False
        if budget < 0:  # -1: dynamic thinking
            return Thinking("adaptive", 0, "high"), bool(include)
        return Thinking("enabled", budget), bool(include)
    if level is not None:
        if not isinstance(level, str):
            raise bad("generationConfig.thinkingConfig.thinkingLevel", "must be a string")
        lv = level.upper()
        if lv in ("MINIMAL", "THINKING_LEVEL_UNSPECIFIED"):
            return (Thinking(), False) if lv == "MINIMAL" else (Thinking("adaptive", 0, "high"), bool(include))
        if lv not in _EFFORT:
            raise bad("generationConfig.thinkingConfig.thinkingLevel", "must be MINIMAL, LOW, MEDIUM or HIGH")
        return Thinking("adaptive", 0, _EFFORT[lv]), bool(include)
    if include:
        return Thinking("adaptive", 0, "high"), True
    return Thinking(), False


def parse_request(body: Any, model: str, stream: bool = False, counting: bool = False) -> GeminiConversation:
    """`model` comes from the URL; `counting`: a countTokens body, where contents may be empty."""
    if not isinstance(body, dict):
        raise bad("", "The request body must be a JSON object.")
    model = strip_model(model)
    if not model:
        raise bad("model", "a model name is required in the URL (models/{model}:method)")
    cfg = _obj(_get(body, "generationConfig"), "generationConfig")
    max_tokens = _int(_get(cfg, "maxOutputTokens"), "generationConfig.maxOutputTokens")
    if max_tokens is not None and max_tokens < 1:
        raise bad("generationConfig.maxOutputTokens", "must be a positive integer")
    temperature = cfg.get("temperature")  # checked, not kept: Kiro takes no temperature
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
        raise bad("generationConfig.temperature", "must be a number")
    stop = _list(_get(cfg, "stopSequences"), "generationConfig.stopSequences")
    if not all(isinstance(s, str) for s in stop):
        raise bad("generationConfig.stopSequences", "must be a list of strings")
    candidates = _int(_get(cfg, "candidateCount"), "generationConfig.candidateCount")
    if candidates is not None and candidates > 1:
        raise bad("generationConfig.candidateCount", "only 1 candidate is supported through Kiro")
    mime = _get(cfg, "responseMimeType")
    if mime is not None and not isinstance(mime, str):
        raise bad("generationConfig.responseMimeType", "must be a string")
    json_mode = mime == "application/json"
    schema = _get(cfg, "responseJsonSchema")
    schema_field = "responseJsonSchema"
    if schema is None:
        schema, schema_field = _get(cfg, "responseSchema"), "responseSchema"
    if schema is not None and not isinstance(schema, dict):
        raise bad(f"generationConfig.{schema_field}", "must be an object")
    thinking, include_thoughts = _thinking(cfg)
    tools, search = _tools(body.get("tools"))
    choice, tools = _tool_choice(_get(body, "toolConfig"), tools)
    return GeminiConversation(
        model=model,
        messages=_contents(body.get("contents"), counting),
        system=_system(_get(body, "systemInstruction")),
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        max_tokens=max_tokens,
        stop_sequences=stop,
        json_schema=(to_json_schema(schema) if schema else {}) if json_mode else None,
        stream=stream,
        include_thoughts=include_thoughts,
        web_search=search,
    )

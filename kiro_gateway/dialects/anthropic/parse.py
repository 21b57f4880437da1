"""Anthropic Messages request → Conversation.

Accepts everything real clients send (Claude Code's `{"role":"system"}` messages, `cache_control`
anywhere, thinking blocks echoed back with signatures, JSON-in-a-string `metadata.user_id`) and
rejects what the API itself rejects, with the API's own style of message naming the field.
"""

from __future__ import annotations

import re
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
from ..blocks import Wording, content_parts, result_content
from .websearch import echoed_results, echoed_use, search_tool

_UNPARSED = "__unparsedToolInput"

__all__ = ["parse_request", "session_id_from", "bad"]

_SESSION_IN_USER_ID = re.compile(r"session_([0-9a-fA-F-]{16,})")
# Anthropic server tools and Anthropic-defined client tools: Kiro accepts only plain functions.
_NON_FUNCTION = re.compile(r"^(web_search|web_fetch|code_execution|computer|bash|text_editor|memory|"
                           r"tool_search)_\d+")
_WEB_SEARCH = re.compile(r"^web_search_\d+$")


def bad(where: str, what: str) -> GatewayError:
    return GatewayError("invalid_request", f"{where}: {what}" if where else what)


_WORDING = Wording(bad, "Input should be a valid string or list of content blocks", "Input should be an object",
                   dotted=True)


def _stream_flag(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return bool(v)
    raise bad("stream", "Input should be a valid boolean")


def _str(v: Any, where: str, required: bool = True) -> str:
    if isinstance(v, str):
        return v
    if v is None and not required:
        return ""
    raise bad(where, "Input should be a valid string" if v is not None else "Field required")


def session_id_from(metadata: Any, header: str | None) -> str | None:
    if header:
        return header
    if not isinstance(metadata, dict):
        return None
    uid = metadata.get("user_id")
    if not isinstance(uid, str) or not uid:
        return None
    if uid.startswith("{"):
        try:
            data = orjson.loads(uid)
            sid = data.get("session_id") if isinstance(data, dict) else None
            if isinstance(sid, str) and sid:
                return sid
        except orjson.JSONDecodeError:
            pass
    m = _SESSION_IN_USER_ID.search(uid)
    return m.group(1) if m else None


def _image(block: dict, where: str) -> ImagePart:
    src = block.get("source")
    if not isinstance(src, dict):
        raise bad(f"{where}.source", "Field required")
    kind = src.get("type")
    if kind == "base64":
        data = _str(src.get("data"), f"{where}.source.data")
        media = _str(src.get("media_type"), f"{where}.source.media_type")
        return ImagePart(media, data)
    if kind == "url":
        raise bad(f"{where}.source", "Image URLs are not supported by this gateway (Kiro accepts only "
                  "inline images): send the image as base64 data (source type \"base64\").")
    raise bad(f"{where}.source.type", f"unsupported image source type {kind!r}; use \"base64\"")


def _document(block: dict, where: str) -> Part:
    src = block.get("source") or {}
    if isinstance(src, dict) and src.get("type") == "text":
        title = block.get("title")
        body = _str(src.get("data"), f"{where}.source.data")
        return TextPart(f"# {title}\n{body}" if title else body)
    if isinstance(src, dict) and src.get("type") == "content" and isinstance(src.get("content"), list):
        texts = [b.get("text", "") for b in src["content"] if isinstance(b, dict) and b.get("type") == "text"]
        return TextPart("\n".join(texts))
    raise bad(where, "Only plain-text documents are supported through Kiro; PDF and other binary "
              "documents are not. Extract the text and send it as a text block.")


def _result_block(b: dict, w: str) -> str | ImagePart:
    t = b.get("type")
    if t == "text":
        return _str(b.get("text"), f"{w}.text")
    if t == "image":
        return _image(b, w)
    if t == "document":
        part = _document(b, w)
        return part.text if isinstance(part, TextPart) else ""
    if t == "search_result":
        inner = b.get("content") or []
        return "\n".join(x.get("text", "") for x in inner if isinstance(x, dict))
    return orjson.dumps(b).decode()


def _tool_result_content(content: Any, where: str) -> tuple[str, list[ImagePart]]:
    if content is None:
        return "", []
    return result_content(content, where, _WORDING, _result_block)


def _block(b: dict, w: str) -> Part:
    t = b.get("type")
    if t == "text":
        return TextPart(_str(b.get("text"), f"{w}.text"))
    if t == "image":
        return _image(b, w)
    if t == "document":
        return _document(b, w)
    if t == "server_tool_use":  # ran on the server; Kiro cannot pair it with a result
        return TextPart(echoed_use(b))
    if t == "tool_use":
        return _tool_use(b, w)
    if t == "tool_result":
        text, images = _tool_result_content(b.get("content"), f"{w}.content")
        return ToolResultPart(_str(b.get("tool_use_id"), f"{w}.tool_use_id"), text, bool(b.get("is_error")), images)
    if t == "thinking":
        return ThinkingPart(_str(b.get("thinking"), f"{w}.thinking", False), b.get("signature"))
    if t == "redacted_thinking":
        return ThinkingPart("", None, redacted=True)
    if t == "web_search_tool_result":
        return TextPart(echoed_results(b))
    if isinstance(t, str) and t.endswith("_tool_result"):
        # A server tool's result echoed back (e.g. web search): keep what it said as text.
        return TextPart(f"[{t}]\n{orjson.dumps(b.get('content')).decode()[:20000]}")
    if t is None:
        raise bad(f"{w}.type", "Field required")
    raise bad(f"{w}.type", f"unsupported content block type {t!r}")


def _system(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        out = []
        for i, b in enumerate(system):
            if not isinstance(b, dict) or b.get("type", "text") != "text":
                raise bad(f"system.{i}", "system blocks must be text blocks")
            out.append(_str(b.get("text"), f"system.{i}.text"))
        return "\n".join(out)
    raise bad("system", "Input should be a valid string or list of text blocks")


def _tools(tools: Any) -> tuple[list[Tool], WebSearchTool | None]:
    """The function tools, and the web search server tool if there is one."""
    if tools is None:
        return [], None
    if not isinstance(tools, list):
        raise bad("tools", "Input should be a valid list")
    out: list[Tool] = []
    search = None
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            raise bad(f"tools.{i}", "Input should be an object")
        kind = t.get("type")
        if isinstance(kind, str) and _WEB_SEARCH.match(kind):
            search = search_tool(t, f"tools.{i}")  # served through Kiro's MCP web_search (docs/kiro-protocol.md)
            continue
        if kind not in (None, "custom") and (_NON_FUNCTION.match(str(kind)) or "input_schema" not in t):
            continue  # other server / Anthropic-defined tools have no Kiro equivalent: dropped
        name = _str(t.get("name"), f"tools.{i}.name")
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise bad(f"tools.{i}.input_schema", "Field required" if schema is None else "Input should be an object")
        out.append(Tool(name, t.get("description") or "", schema))
    return out, search


def _tool_choice(tc: Any) -> ToolChoice:
    if tc is None:
        return ToolChoice()
    if not isinstance(tc, dict) or tc.get("type") not in ("auto", "any", "tool", "none"):
        raise bad("tool_choice", "Input should be an object with type auto, any, tool or none")
    if tc["type"] == "tool":
        return ToolChoice("tool", _str(tc.get("name"), "tool_choice.name"))
    return ToolChoice(tc["type"])


def _thinking(th: Any, output_config: Any) -> Thinking:
    if th is None:
        return Thinking()
    if not isinstance(th, dict):
        raise bad("thinking", "Input should be an object")
    kind = th.get("type")
    if kind == "enabled":
        budget = th.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise bad("thinking.budget_tokens", "Field required")
        return Thinking("enabled", budget)
    if kind == "adaptive":
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        return Thinking("adaptive", 0, effort if isinstance(effort, str) else "high")
    if kind == "disabled":
        return Thinking()
    raise bad("thinking.type", "Input should be 'enabled', 'adaptive' or 'disabled'")


def _tool_use(b: dict, w: str) -> ToolCallPart:
    tid, name = _str(b.get("id"), f"{w}.id"), _str(b.get("name"), f"{w}.name")
    args = b.get("input", {})
    if isinstance(args, str):
        try:
            args = orjson.loads(args) if args.strip() else {}
        except orjson.JSONDecodeError:
            return ToolCallPart.cut_off(tid, name, len(args))
    if isinstance(args, dict) and len(args) == 1 and isinstance(args.get(_UNPARSED), dict):
        # Claude Code's record of arguments it could not parse: a call Kiro cut off mid-way. It
        # keeps the first 2 KB as "raw" and the full length as "len".
        info = args[_UNPARSED]
        chars = info.get("len")
        if not isinstance(chars, int):
            chars = len(info["raw"]) if isinstance(info.get("raw"), str) else 0
        return ToolCallPart.cut_off(tid, name, chars)
    return ToolCallPart(tid, name, args if isinstance(args, dict) else {"input": args})


def parse_request(body: Any, session_header: str | None = None, counting: bool = False) -> Conversation:
    """`counting`: a count_tokens body, which has no max_tokens."""
    if not isinstance(body, dict):
        raise bad("", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "Field required")
    max_tokens = body.get("max_tokens")
    if counting and max_tokens is None:
        max_tokens = 1
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad("max_tokens", "Field required" if max_tokens is None else "Input should be a positive integer")
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        raise bad("messages", "Field required" if msgs is None else "Input should be a valid list")
    if not msgs:
        raise bad("messages", "at least one message is required")
    messages: list[Message] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad(f"messages.{i}", "Input should be an object")
        role = m.get("role")
        if role == "system":
            # Claude Code puts reminders here; Kiro has no such role, so they become user text.
            text = _system(m.get("content"))
            if text:
                messages.append(Message("user", [TextPart(text)]))
            continue
        if role not in ("user", "assistant"):
            raise bad(f"messages.{i}.role", "Input should be 'user' or 'assistant'")
        messages.append(Message(role, content_parts(m.get("content"), f"messages.{i}.content", _WORDING, _block)))
    stop = body.get("stop_sequences") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise bad("stop_sequences", "Input should be a list of strings")
    temperature = body.get("temperature")
    if temperature is not None and not isinstance(temperature, (int, float)):  # checked, not kept
        raise bad("temperature", "Input should be a number")
    output = body.get("output_config")
    fmt = output.get("format") if isinstance(output, dict) else None
    json_schema = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        # Structured output (Claude Code's title request uses it)
        json_schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
    tools, search = _tools(body.get("tools"))
    return Conversation(
        model=model,
        messages=messages,
        system=_system(body.get("system")),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        thinking=_thinking(body.get("thinking"), body.get("output_config")),
        max_tokens=max_tokens,
        stop_sequences=stop,
        json_schema=json_schema,
        session_id=session_id_from(body.get("metadata"), session_header),
        stream=_stream_flag(body.get("stream")),
        web_search=search,
    )

"""OpenAI Chat Completions request → Conversation.

Accepts what real clients send (string or part content, `developer` messages, assistant
`tool_calls` with JSON-string arguments, `reasoning_content` echoed back, `tool` results, data-URL
images) and rejects, with a 400 naming the field, what cannot be expressed through Kiro.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.conversation import (
    Conversation,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolResultPart,
    WebSearchTool,
)
from ..blocks import content_parts
from ..openai_common import (
    WORDING,
    bad,
    json_format,
    stream_flag,
    image_from_url,
    opt_int,
    opt_number,
    opt_str,
    req_str,
    thinking_for_effort,
    tool_call,
    tool_choice,
)

__all__ = ["ChatConversation", "parse_request"]


@dataclass(slots=True)
class ChatConversation(Conversation):
    """The neutral conversation plus what only the Chat Completions renderer needs."""

    include_usage: bool = False


def _part(p: dict, w: str, allow_images: bool) -> Part | None:
    kind = p.get("type")
    if kind == "text":
        text = req_str(p.get("text"), f"{w}.text")
        return TextPart(text) if text else None
    if kind == "refusal":
        return TextPart(req_str(p.get("refusal"), f"{w}.refusal"))
    if kind == "image_url" and allow_images:
        img = p.get("image_url")
        url = img.get("url") if isinstance(img, dict) else img
        return image_from_url(url, f"{w}.image_url.url")
    if kind in ("input_audio", "file", "image_url"):
        raise bad(f"{w}.type", f"Content parts of type {kind!r} are not supported here through Kiro.")
    raise bad(f"{w}.type", "Expected 'text' or 'image_url'." if kind is not None else "Field required")


def _user_part(p: dict, w: str) -> Part | None:
    return _part(p, w, True)


def _text_part(p: dict, w: str) -> Part | None:
    return _part(p, w, False)


def _text_parts(content: Any, where: str, allow_images: bool) -> list[Part]:
    if content is None:
        return []
    return content_parts(content, where, WORDING, _user_part if allow_images else _text_part)


def _flat_text(content: Any, where: str) -> str:
    return "\n".join(p.text for p in _text_parts(content, where, False) if isinstance(p, TextPart))


def _assistant(m: dict, where: str) -> list[Part]:
    parts: list[Part] = []
    reasoning = m.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(reasoning))
    parts += _text_parts(m.get("content"), f"{where}.content", False)
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise bad(f"{where}.tool_calls", "Expected an array.")
        for i, c in enumerate(calls):
            w = f"{where}.tool_calls[{i}]"
            if not isinstance(c, dict):
                raise bad(w, "Expected an object.")
            fn = c.get("function")
            if not isinstance(fn, dict):
                raise bad(f"{w}.function", "Field required")
            parts.append(tool_call(req_str(c.get("id"), f"{w}.id"), req_str(fn.get("name"), f"{w}.function.name"),
                                   fn.get("arguments"), f"{w}.function.arguments"))
    return parts


def _messages(msgs: Any) -> tuple[str, list[Message]]:
    if not isinstance(msgs, list):
        raise bad("messages", "Field required" if msgs is None else "Expected an array.")
    if not msgs:
        raise bad("messages", "At least one message is required.")
    system: list[str] = []
    out: list[Message] = []
    for i, m in enumerate(msgs):
        w = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(w, "Expected an object.")
        role = m.get("role")
        if role in ("system", "developer"):
            text = _flat_text(m.get("content"), f"{w}.content")
            if not out:
                system.append(text)
            elif text:  # a later instruction keeps its place in the conversation (Kiro has no role for it)
                out.append(Message("user", [TextPart(text)]))
        elif role == "user":
            out.append(Message("user", _text_parts(m.get("content"), f"{w}.content", True)))
        elif role == "assistant":
            out.append(Message("assistant", _assistant(m, w)))
        elif role == "tool":
            cid = req_str(m.get("tool_call_id"), f"{w}.tool_call_id")
            out.append(Message("user", [ToolResultPart(cid, _flat_text(m.get("content"), f"{w}.content"))]))
        elif role == "function":
            raise bad(f"{w}.role", "The deprecated 'function' role is not supported; use tools and 'tool' messages.")
        else:
            raise bad(f"{w}.role", "Expected one of 'system', 'developer', 'user', 'assistant', 'tool'."
                      if role is not None else "Field required")
    return "\n\n".join(s for s in system if s), out


def _tools(tools: Any, search_options: Any) -> tuple[list[Tool], WebSearchTool | None]:
    """The function tools, and the web search: `web_search_options` (what search models take) or
    a `web_search` tool (docs/kiro-protocol.md, “Server tools, MCP and web search”)."""
    if search_options is not None and not isinstance(search_options, dict):
        raise bad("web_search_options", "Expected an object.")
    search = WebSearchTool() if search_options is not None else None
    if tools is None:
        return [], search
    if not isinstance(tools, list):
        raise bad("tools", "Expected an array.")
    out: list[Tool] = []
    for i, t in enumerate(tools):
        w = f"tools[{i}]"
        if not isinstance(t, dict):
            raise bad(w, "Expected an object.")
        kind = t.get("type", "function")
        if isinstance(kind, str) and kind.startswith("web_search"):
            search = WebSearchTool()
            continue
        if kind != "function":
            # custom / other built-in tools: no Kiro equivalent (docs/kiro-protocol.md, “Server tools, MCP and web search”)
            continue
        fn = t.get("function")
        if not isinstance(fn, dict):
            raise bad(f"{w}.function", "Field required")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise bad(f"{w}.function.parameters", "Expected an object.")
        out.append(Tool(req_str(fn.get("name"), f"{w}.function.name"),
                        opt_str(fn.get("description"), f"{w}.function.description") or "",
                        params if params is not None else {"type": "object", "properties": {}}))
    return out, search


def _stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise bad("stop", "Expected a string or an array of strings.")


def parse_request(body: Any, session_header: str | None = None) -> ChatConversation:
    if not isinstance(body, dict):
        raise bad("", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "Field required" if model is None else "Expected a non-empty string.")
    system, messages = _messages(body.get("messages"))
    n = opt_int(body.get("n"), "n")
    if n not in (None, 1):
        raise bad("n", "Only n=1 is supported.")
    max_tokens = opt_int(body.get("max_completion_tokens"), "max_completion_tokens")
    if max_tokens is None:
        max_tokens = opt_int(body.get("max_tokens"), "max_tokens")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise bad("stream_options", "Expected an object.")
    json_schema = json_format(body.get("response_format"), "response_format", nested=True)
    cache_key = body.get("prompt_cache_key")
    # Checked in the order the fields were always checked, so a body with several faults names
    # the same one; temperature is checked and not kept (Kiro takes none).
    tools, search = _tools(body.get("tools"), body.get("web_search_options"))
    choice = tool_choice(body.get("tool_choice"), nested=True)
    thinking = thinking_for_effort(body.get("reasoning_effort"), "reasoning_effort")
    opt_number(body.get("temperature"), "temperature")
    return ChatConversation(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        max_tokens=max_tokens,
        stop_sequences=_stop(body.get("stop")),
        json_schema=json_schema,
        session_id=session_header or (cache_key if isinstance(cache_key, str) and cache_key else None),
        stream=stream_flag(body.get("stream")),
        include_usage=bool(opts and opts.get("include_usage") is True),
        web_search=search,
    )

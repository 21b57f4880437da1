"""OpenAI Responses API request → Conversation.

What Codex CLI 0.169 sends (tests/fixtures/codex/README.md): `store: false` with the full history
every turn, `developer` and `user` messages with `input_text` parts, `function_call` /
`function_call_output` items, flat `function` tools, `namespace` tools (groups of functions, whose
calls come back as `{"name": fn, "namespace": ns}`) and the built-in `web_search`.

Namespaced functions reach Kiro as `<namespace>__<function>` (Kiro has no namespaces); the
renderer maps the names back. The built-in `web_search` is answered through Kiro's MCP
web_search (the upstream decides how); other built-in tools (file_search, …) and custom (grammar)
tools have no Kiro equivalent and are dropped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...core.conversation import (
    Conversation,
    ImagePart,
    Message,
    Part,
    Role,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    WebSearchTool,
)
from ..jsonbytes import dumps_kept
from ..blocks import content_parts, result_content
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
from .store import ResponseStore, as_items

__all__ = ["ResponsesConversation", "parse_request", "qualified", "encode_reasoning", "ECHO_FIELDS"]

NS_SEP = "__"
_ENC_PREFIX = "kg1:"
# Items that record work done elsewhere (server tools, compaction…): nothing Kiro can pair; skipped.
_SKIPPED_ITEMS = {"web_search_call", "file_search_call", "computer_call", "computer_call_output",
                  "image_generation_call", "code_interpreter_call", "mcp_list_tools", "mcp_call",
                  "mcp_approval_request", "mcp_approval_response", "item_reference", "compaction",
                  "compaction_summary", "tool_search_call", "tool_search_output", "local_shell_call",
                  "local_shell_call_output", "additional_tools", "ghost_snapshot"}
# Request fields echoed in the Response object as they came (instructions and tools, the big
# ones, are serialised at once: see _big_echo).
ECHO_FIELDS = ("max_output_tokens", "metadata", "parallel_tool_calls", "temperature", "tool_choice", "top_p",
               "truncation", "user", "text", "service_tier", "prompt_cache_key")


@dataclass(slots=True)
class ResponsesConversation(Conversation):
    """The neutral conversation plus what only the Responses renderer needs."""

    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)  # qualified → (ns, fn)
    summary: bool = False  # reasoning.summary asked for: thinking streams as summary text
    encrypted: bool = False  # include has reasoning.encrypted_content
    store: bool = True
    previous_response_id: str | None = None
    reasoning: dict = field(default_factory=dict)
    echo: dict = field(default_factory=dict)  # request fields the Response repeats (ECHO_FIELDS)
    # The two big ones (often 50+ KB) already serialised: see _big_echo().
    echo_json: tuple[bytes, bytes] = (b"null", b"[]")  # (instructions, tools)
    # For the store when `store` is on: the items before this request (a JSON array, the previous
    # response's own bytes) and the request body (its "input", "instructions" and "tools").
    prior: bytes = b"[]"
    source: bytes = b""
    owner: str = ""  # the client that asked: a stored Response is its alone (store.py)


def qualified(namespace: str, name: str) -> str:
    return f"{namespace}{NS_SEP}{name}"


def encode_reasoning(text: str) -> str:
    """Our `encrypted_content`: the thinking itself, so a store:false client carries it back."""
    return _ENC_PREFIX + base64.b64encode(text.encode()).decode()


def _decode_reasoning(enc: Any) -> str:
    if not isinstance(enc, str) or not enc.startswith(_ENC_PREFIX):
        return ""  # someone else's opaque blob (e.g. from OpenAI itself): nothing to recover
    try:
        return base64.b64decode(enc[len(_ENC_PREFIX):], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def _add(messages: list[Message], role: Role, parts: list[Part]) -> None:
    if messages and messages[-1].role == role:
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def _part(p: dict, w: str, role: str) -> Part | None:
    kind = p.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        text = req_str(p.get("text"), f"{w}.text")
        return TextPart(text) if text else None
    if kind == "refusal":
        return TextPart(req_str(p.get("refusal"), f"{w}.refusal"))
    if kind == "input_image" and role == "user":
        if p.get("image_url") is None and p.get("file_id") is not None:
            raise bad(f"{w}.file_id", "Uploaded files are not supported; send the image as a data URL.")
        return image_from_url(p.get("image_url"), f"{w}.image_url")
    if kind in ("input_image", "input_file", "input_audio"):
        raise bad(f"{w}.type", f"Content of type {kind!r} is not supported here through Kiro.")
    raise bad(f"{w}.type", "Field required" if kind is None else f"Unsupported content type {kind!r}.")


def _user_part(p: dict, w: str) -> Part | None:
    return _part(p, w, "user")


def _other_part(p: dict, w: str) -> Part | None:
    return _part(p, w, "")  # assistant, system, developer: no images


def _content(content: Any, role: str, where: str) -> list[Part]:
    return content_parts(content, where, WORDING, _user_part if role == "user" else _other_part)


def _output_block(p: dict, w: str) -> str | ImagePart | None:
    if p.get("type") == "input_image":
        return image_from_url(p.get("image_url"), f"{w}.image_url")
    text = p.get("text")
    return text if isinstance(text, str) else None


def _tool_output(output: Any, where: str) -> tuple[str, list[ImagePart]]:
    return result_content(output, where, WORDING, _output_block)


def _reasoning_text(item: dict) -> str:
    text = _decode_reasoning(item.get("encrypted_content"))
    if text:
        return text
    for key in ("content", "summary"):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [p.get("text") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if any(texts):
                return "\n\n".join(t for t in texts if t)
    return ""


def _items(items: Any, system: list[str], messages: list[Message]) -> None:
    if isinstance(items, str):
        _add(messages, "user", [TextPart(items)] if items else [])
        return
    if not isinstance(items, list):
        raise bad("input", "Field required" if items is None else "Expected a string or an array of items.")
    for i, it in enumerate(items):
        w = f"input[{i}]"
        if not isinstance(it, dict):
            raise bad(w, "Expected an object.")
        kind = it.get("type", "message" if "role" in it else None)
        if kind == "message":
            role = it.get("role")
            if role in ("system", "developer"):
                parts = _content(it.get("content"), role, f"{w}.content")
                text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
                if not messages:
                    system.append(text)
                elif text:  # a later instruction keeps its place (Kiro has no role for it)
                    _add(messages, "user", [TextPart(text)])
            elif role in ("user", "assistant"):
                _add(messages, role, _content(it.get("content"), role, f"{w}.content"))
            else:
                raise bad(f"{w}.role", "Field required" if role is None else
                          "Expected one of 'user', 'assistant', 'system', 'developer'.")
        elif kind == "function_call":
            name = req_str(it.get("name"), f"{w}.name")
            ns = it.get("namespace")
            if isinstance(ns, str) and ns:
                name = qualified(ns, name)
            _add(messages, "assistant", [tool_call(req_str(it.get("call_id"), f"{w}.call_id"), name,
                                                   it.get("arguments"), f"{w}.arguments")])
        elif kind == "function_call_output":
            text, images = _tool_output(it.get("output"), f"{w}.output")
            _add(messages, "user", [ToolResultPart(req_str(it.get("call_id"), f"{w}.call_id"), text, False, images)])
        elif kind == "custom_tool_call":  # history of a freeform tool: keep it as a call with text input
            _add(messages, "assistant", [ToolCallPart(req_str(it.get("call_id"), f"{w}.call_id"),
                                                      req_str(it.get("name"), f"{w}.name"),
                                                      {"input": it.get("input") if isinstance(it.get("input"), str) else ""})])
        elif kind == "custom_tool_call_output":
            text, images = _tool_output(it.get("output"), f"{w}.output")
            _add(messages, "user", [ToolResultPart(req_str(it.get("call_id"), f"{w}.call_id"), text, False, images)])
        elif kind == "reasoning":
            text = _reasoning_text(it)
            if text:
                _add(messages, "assistant", [ThinkingPart(text)])
        elif isinstance(kind, str) and kind in _SKIPPED_ITEMS:
            continue
        else:
            raise bad(f"{w}.type", "Field required" if kind is None else f"Unsupported input item type {kind!r}.")


def _function(t: dict, where: str, name: str | None = None, ns_desc: str = "") -> Tool:
    params = t.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise bad(f"{where}.parameters", "Expected an object.")
    desc = opt_str(t.get("description"), f"{where}.description") or ns_desc
    return Tool(name or req_str(t.get("name"), f"{where}.name"), desc,
                params if params is not None else {"type": "object", "properties": {}})


def _search(t: dict, where: str) -> WebSearchTool:
    """A built-in `web_search` tool (any version): its allowed domains, if it names some."""
    filters = t.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise bad(f"{where}.filters", "Expected an object.")
    allowed = (filters or {}).get("allowed_domains")
    if allowed is not None and not (isinstance(allowed, list) and all(isinstance(d, str) for d in allowed)):
        raise bad(f"{where}.filters.allowed_domains", "Expected an array of strings.")
    return WebSearchTool(allowed_domains=list(allowed or []))


def _tools(tools: Any, namespaces: dict[str, tuple[str, str]]) -> tuple[list[Tool], WebSearchTool | None]:
    """The function tools (namespaced ones qualified), and the web search if one is declared."""
    if tools is None:
        return [], None
    if not isinstance(tools, list):
        raise bad("tools", "Expected an array.")
    out: list[Tool] = []
    search = None
    for i, t in enumerate(tools):
        w = f"tools[{i}]"
        if not isinstance(t, dict):
            raise bad(w, "Expected an object.")
        kind = t.get("type")
        if isinstance(kind, str) and kind.startswith("web_search"):
            search = _search(t, w)
        elif kind == "function":
            out.append(_function(t, w))
        elif kind == "namespace":
            ns = req_str(t.get("name"), f"{w}.name")
            inner = t.get("tools")
            if not isinstance(inner, list):
                raise bad(f"{w}.tools", "Field required" if inner is None else "Expected an array.")
            ns_desc = opt_str(t.get("description"), f"{w}.description") or ""
            for j, f in enumerate(inner):
                fw = f"{w}.tools[{j}]"
                if not isinstance(f, dict):
                    raise bad(fw, "Expected an object.")
                if f.get("type", "function") != "function":
                    continue
                fn = req_str(f.get("name"), f"{fw}.name")
                q = qualified(ns, fn)
                namespaces[q] = (ns, fn)
                out.append(_function(f, fw, q, ns_desc))
        elif kind is None:
            raise bad(f"{w}.type", "Field required")
        # file_search, custom, mcp…: no Kiro equivalent (docs/kiro-protocol.md, “Server tools, MCP and web search”), dropped
    return out, search


def _tool_choice(tc: Any) -> ToolChoice:
    kind = tc.get("type") if isinstance(tc, dict) else None
    if isinstance(kind, str) and kind.startswith("web_search"):
        # a forced search: the gateway's web_search (docs/kiro-protocol.md, “Server tools, MCP and web search”)
        return ToolChoice("tool", "web_search")
    choice = tool_choice(tc, nested=False)
    ns = tc.get("namespace") if isinstance(tc, dict) else None
    if choice.mode == "tool" and choice.name is not None and isinstance(ns, str) and ns:
        choice.name = qualified(ns, choice.name)
    return choice


def _text_format(text: Any) -> dict | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise bad("text", "Expected an object.")
    return json_format(text.get("format"), "text.format", nested=False)


def _big_echo(body: dict) -> tuple[bytes, bytes]:
    """The request's instructions and tools as JSON, for the finished Response to repeat.

    Serialised now, while the just-parsed objects are still in the CPU's caches: at the end of the
    reply, after other requests went through, the same walk over thousands of small objects took
    five times as long. Kept for the whole reply: exact-size copies (jsonbytes.py)."""
    tools = body.get("tools")
    return dumps_kept(body.get("instructions")), dumps_kept(tools if tools is not None else [])


def parse_request(body: Any, store: ResponseStore | None = None, session_header: str | None = None,
                  raw: bytes | None = None, owner: str = "") -> ResponsesConversation:
    """`raw`: the body's bytes when at hand, kept by reference for the store (else re-serialised)."""
    if not isinstance(body, dict):
        raise bad("", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "Field required" if model is None else "Expected a non-empty string.")
    if body.get("conversation") is not None:
        raise bad("conversation", "Conversations are not supported; send the history in `input` or "
                  "use previous_response_id.")
    system: list[str] = []
    instructions = opt_str(body.get("instructions"), "instructions")
    if instructions:
        system.append(instructions)
    messages: list[Message] = []
    prev_id = opt_str(body.get("previous_response_id"), "previous_response_id")
    if body.get("input") == []:
        raise bad("input", "Invalid 'input': empty array. Expected an array with minimum length 1.", "empty_array")
    items = as_items(body.get("input"))
    prior = b"[]"
    if prev_id:
        stored = store.get(prev_id, owner) if store is not None else None
        if stored is None:
            raise bad("previous_response_id", f"Previous response with id '{prev_id}' not found.",
                      "previous_response_not_found")
        prior = stored.items
        _items(orjson.loads(prior), [], messages)  # earlier instructions do not carry over (OpenAI's rule)
    _items(items, system, messages)
    namespaces: dict[str, tuple[str, str]] = {}
    tools, search = _tools(body.get("tools"), namespaces)
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise bad("reasoning", "Expected an object.")
    reasoning = reasoning or {}
    summary = reasoning.get("summary") or reasoning.get("generate_summary")
    if summary is not None and summary not in ("auto", "concise", "detailed", "none"):
        raise bad("reasoning.summary", "Expected 'auto', 'concise', 'detailed' or 'none'.")
    include = body.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(x, str) for x in include)):
        raise bad("include", "Expected an array of strings.")
    schema = _text_format(body.get("text"))
    store_flag = body.get("store")
    if store_flag is not None and not isinstance(store_flag, bool):
        raise bad("store", "Expected a boolean.")
    source = b""
    if store_flag is not False:
        source = raw or orjson.dumps({"input": items, "instructions": body.get("instructions"), "tools": body.get("tools")})
    cache_key = body.get("prompt_cache_key")
    # Checked in the order the fields were always checked, so a body with several faults names
    # the same one; temperature is checked and not kept (Kiro takes none).
    choice = _tool_choice(body.get("tool_choice"))
    thinking = thinking_for_effort(reasoning.get("effort"), "reasoning.effort")
    max_tokens = opt_int(body.get("max_output_tokens"), "max_output_tokens")
    opt_number(body.get("temperature"), "temperature")
    return ResponsesConversation(
        model=model,
        messages=messages,
        system="\n\n".join(s for s in system if s),
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        max_tokens=max_tokens,
        json_schema=schema,
        session_id=session_header or (cache_key if isinstance(cache_key, str) and cache_key else None),
        stream=stream_flag(body.get("stream")),
        namespaces=namespaces,
        summary=summary not in (None, "none"),
        encrypted="reasoning.encrypted_content" in (include or ()),
        store=store_flag is not False,
        previous_response_id=prev_id,
        owner=owner,
        reasoning={"effort": reasoning.get("effort"), "summary": summary},
        echo={k: body.get(k) for k in ECHO_FIELDS},
        echo_json=_big_echo(body),
        prior=prior,
        source=source,
        web_search=search,
    )

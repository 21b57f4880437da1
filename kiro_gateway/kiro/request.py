"""Conversation → Kiro `generateAssistantResponse` body (docs/kiro-protocol.md, “Request body” / “Thinking” / “Size and request rules”).

Kiro validates far more strictly than the client APIs do, so the conversation is normalised on the
way: history alternates user/assistant, starts with a user turn and ends with an assistant turn;
same-role turns are merged; no content is empty; every tool result answers a tool use of the turn
just before it (orphans become text, missing results become error results, duplicate ids are
dropped); every tool used in history is declared; tool names over 64 characters are shortened
reversibly; over-long tool descriptions move to the system prompt; images take Kiro's format; and
the body is kept under Kiro's size limit by dropping the oldest turns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ..core.conversation import (
    ContextOverflow,
    Conversation,
    GatewayError,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from ..util.ids import random_uuid
from .fit import Overflowing, fit
from .models import ModelMapper, Resolved
from .tools import ToolNames, kiro_tool_specs

__all__ = ["KiroRequest", "build_request", "RequestOptions"]

SYSTEM_ACK = "I will follow these instructions."
EMPTY_ASSISTANT = " "  # kiro.rs's choice: Kiro accepts whitespace, not ""
EMPTY_USER = "Continue"
IMAGE_ONLY_USER = "(image)"
# Kiro requires a result for every tool use. A call without one was not run: interrupted, or cut
# off mid-arguments because the reply grew too long (kiro.rs #49) — say so, so the model retries
# in smaller pieces instead of repeating the same oversized call.
# A call whose arguments Kiro cut off (ToolCallPart.cut): the client could not run it. Said in its
# result, so the model changes course instead of repeating the same oversized call.
CUT_CALL = ("This call was not run: its arguments were cut off because the reply grew longer than the "
            "model service allows in one answer. Do not repeat it as it was. Split the work into smaller "
            "calls: for a large file, write a first part, then add the rest in further edits of at most "
            "about 200 lines each.")
MISSING_RESULT = ("This tool call was not run and has no result: it was interrupted, or its arguments were cut "
                  "off because the reply was too long. If it was cut off, retry in smaller pieces (for example, "
                  "write a large file in several parts).")
IMAGE_FORMATS = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png", "image/gif": "gif",
                 "image/webp": "webp"}
DEFAULT_BUDGET = 20000
MAX_BUDGET = 24576


# Room left in the size guard for the profileArn spliced in per credential.
PROFILE_ROOM = 256


@dataclass(slots=True)
class RequestOptions:
    max_body_bytes: int = 1_080_000
    overflow: str = "trim"  # "trim" | "compact" | "error": what fit.py does when it does not fit
    check_tokens: bool = True  # also keep the tokens under the model's window (less the reply's room)
    # Kiro model id -> the window the accounts report for it (ListAvailableModels' tokenLimits),
    # None where no account said; the built-in table's window is used then.
    window_of: Callable[[str], int | None] | None = None


class KiroRequest:
    """The Kiro body, built once per client request, and what decoding the reply needs.

    The profileArn goes at the top level of the body (docs/kiro-protocol.md, “Profile ARN placement”) and differs per credential,
    so it is spliced in per attempt: failing over to another account does not need the
    conversation again (it is released as soon as the body exists). The body is kept, one
    exact-size copy with the last credential's profileArn, until Kiro accepts it (`release`):
    orjson's own output buffer is several times larger than its JSON (jsonbytes.py), so it is not
    the one kept, not even while the request waits for an account (a burst of 5,000 requests
    queued in admission held 1.3 GB of orjson buffers).
    """

    __slots__ = ("model", "tool_names", "thinking", "conversation_id", "dropped_turns", "size", "fixed",
                 "overflowing", "budget", "byte_limit", "repaired", "_data", "_cut", "_arn")

    def __init__(self, body: bytes, model: Resolved, tool_names: ToolNames, thinking: bool,
                 conversation_id: str, dropped_turns: int = 0, fixed: int = 0) -> None:
        self.model = model
        self.tool_names = tool_names
        self.thinking = thinking
        self.conversation_id = conversation_id
        self.dropped_turns = dropped_turns  # oldest history messages left out to fit (fit.py)
        self.fixed = fixed  # leading history entries that carry the system prompt
        self.overflowing = False  # over the window, left for compact.py to summarise
        self.budget: int | None = None  # the input token budget (window less the reply's room)
        self.byte_limit = 0
        self.repaired: str | None = None  # the Kiro rule the body was repaired for, after Kiro refused it
        self.size = len(body)  # without profileArn
        self._data = bytes(memoryview(body))  # exact size (one copy, which a body sent unchanged reuses)
        self._cut = len(body) - 1  # where the closing brace is, and a profileArn goes
        self._arn: str | None | bool = None  # the profileArn in _data (None: none); False: orjson's own buffer

    @property
    def body(self) -> bytes:
        """The body without a profileArn."""
        if self._arn is None or self._arn is False:
            return self._data
        return bytes(memoryview(self._data)[: self._cut]) + b"}"

    def with_profile(self, profile_arn: str | None) -> bytes:
        """The body for one credential, with its profileArn (none when it has none)."""
        arn = profile_arn or None
        if arn != self._arn:
            if not self._data:
                raise RuntimeError("the Kiro body was released")
            tail = b',"profileArn":' + orjson.dumps(arn) + b"}" if arn else b"}"
            self._data = b"".join((memoryview(self._data)[: self._cut], tail))  # one allocation
            self._arn = arn
        return self._data

    def replace(self, body: bytes, dropped: int) -> None:
        """A new body for the same request (compacted: compact.py)."""
        self.dropped_turns += dropped
        self.size = len(body)
        self._data, self._cut, self._arn = body, len(body) - 1, False
        self.overflowing = False

    def shrink(self, byte_limit: int, overflow: str) -> None:
        """Kiro said it does not fit though our count said it did: the same body, trimmed to
        `byte_limit` (a retry, once). Raises ContextOverflow when it cannot be smaller."""
        payload = orjson.loads(self.body)
        body, dropped = fit(payload, self.fixed, byte_limit, None, overflow, self.model.context_window)
        self.dropped_turns += dropped
        self.size = len(body)
        self._data, self._cut, self._arn = body, len(body) - 1, False

    def release(self) -> None:
        """Kiro accepted the body: no retry will need it, and streams may stay open long."""
        self._data = b""
        self._arn = False


def conversation_id_for(session_id: str | None) -> str:
    if not session_id:
        return random_uuid()
    try:
        return str(uuid.UUID(session_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "kiro-gateway:" + session_id))


def thinking_prefix(conv: Conversation, forced: bool) -> str:
    t = conv.thinking
    if t.mode == "adaptive":
        return (f"<thinking_mode>adaptive</thinking_mode>"
                f"<thinking_effort>{t.effort or 'high'}</thinking_effort>")
    if t.mode == "enabled" or forced:
        budget = t.budget or DEFAULT_BUDGET
        budget = max(1024, min(budget, MAX_BUDGET))
        return f"<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
    return ""


def build_request(conv: Conversation, mapper: ModelMapper, opts: RequestOptions) -> KiroRequest:
    resolved = mapper.resolve(conv.model)
    served = opts.window_of(resolved.kiro_id) if opts.window_of else None
    if served and served != resolved.context_window:
        resolved = replace(resolved, context_window=served)
    prefix = thinking_prefix(conv, resolved.force_thinking)
    names = ToolNames()
    tools, long_docs = kiro_tool_specs(conv.tools, names)

    system = conv.system
    if long_docs:
        system = (system + "\n\n" if system else "") + long_docs
    if conv.json_mode:
        system = (system + "\n\n" if system else "") + _json_instruction(conv.json_schema)
    if prefix and ("<thinking_mode>" in system or "<max_thinking_length>" in system):
        prefix = ""
    head = (prefix + "\n" + system) if (prefix and system) else (prefix or system)

    turns = _normalise(conv.messages)
    current = turns.pop()
    history_msgs = turns
    model_id = resolved.kiro_id

    used_names = {p.name for m in history_msgs for p in m.parts if isinstance(p, ToolCallPart)}
    tools = _with_placeholders(tools, used_names, names)

    history: list[dict[str, Any]] = []
    if head:
        history.append(_user_entry(head, model_id, [], []))
        history.append({"assistantResponseMessage": {"content": SYSTEM_ACK}})
    fixed = len(history)
    for m in history_msgs:
        history.append(_assistant_entry(m, names) if m.role == "assistant" else
                       _user_from(m, model_id))

    cur_text, cur_images, cur_results = _user_parts(current)
    cur_text = _apply_tool_choice(conv, cur_text)
    if not cur_text and not cur_results:
        cur_text = IMAGE_ONLY_USER if cur_images else EMPTY_USER
    ctx: dict[str, Any] = {}
    if cur_results:
        ctx["toolResults"] = cur_results
    if tools:
        ctx["tools"] = tools
    user_msg: dict[str, Any] = {"userInputMessageContext": ctx, "content": cur_text, "modelId": model_id}
    if cur_images:
        user_msg["images"] = cur_images
    user_msg["origin"] = "AI_EDITOR"

    conversation_id = conversation_id_for(conv.session_id)
    state: dict[str, Any] = {
        "agentContinuationId": random_uuid(),
        "agentTaskType": "vibe",
        "chatTriggerType": "MANUAL",
        "conversationId": conversation_id,
        "currentMessage": {"userInputMessage": user_msg},
    }
    if history:
        state["history"] = history
    payload: dict[str, Any] = {"conversationState": state}

    window = resolved.context_window
    budget = window - reply_room(conv.max_tokens, window) if opts.check_tokens else None
    over = False
    try:
        body, dropped = fit(payload, fixed, opts.max_body_bytes - PROFILE_ROOM, budget, opts.overflow, window)
    except Overflowing:  # compact: the body as it is, marked; Upstream has it summarised (compact.py)
        body, dropped, over = orjson.dumps(payload), 0, True
    req = KiroRequest(body, resolved, names, bool(prefix) or "<thinking_mode>" in head,
                      conversation_id, dropped, fixed)
    req.overflowing, req.budget, req.byte_limit = over, budget, opts.max_body_bytes - PROFILE_ROOM
    return req


def reply_room(max_tokens: int | None, window: int) -> int:
    """Tokens kept free for the answer: what the client asked for, within reason."""
    return min(max_tokens or 8192, 32_000, window // 4)


# ---------------------------------------------------------------------------------------------
# Normalisation of the message list


def _normalise(messages: list[Message]) -> list[Message]:
    """Alternating turns, user first and last, tool results paired with the tool uses before them."""
    merged: list[Message] = []
    for m in messages:
        if not m.parts and m.role == "assistant":
            continue
        if merged and merged[-1].role == m.role:
            merged[-1] = Message(m.role, merged[-1].parts + m.parts)
        else:
            merged.append(Message(m.role, list(m.parts)))
    if not merged or merged[0].role != "user":
        merged.insert(0, Message("user", [TextPart(EMPTY_USER)]))
    if merged[-1].role != "user":  # assistant prefill: Kiro needs a user turn to answer
        merged.append(Message("user", [TextPart(EMPTY_USER)]))

    seen_ids: set[str] = set()
    pending: dict[str, ToolCallPart] = {}  # tool uses of the previous assistant turn
    for i, m in enumerate(merged):
        if m.role == "assistant":
            parts = []
            pending = {}
            for p in m.parts:
                if isinstance(p, ToolCallPart):
                    if p.id in seen_ids or not p.id:
                        continue  # a duplicate id would be rejected: keep the first
                    seen_ids.add(p.id)
                    pending[p.id] = p
                parts.append(p)
            merged[i] = Message("assistant", parts)
            continue
        parts = []
        answered: set[str] = set()
        for p in m.parts:
            if isinstance(p, ToolResultPart):
                if p.tool_call_id in pending and p.tool_call_id not in answered:
                    answered.add(p.tool_call_id)
                    if pending[p.tool_call_id].cut:
                        p = ToolResultPart(p.tool_call_id, f"{p.content}\n\n{CUT_CALL}".lstrip(), True, p.images)
                    parts.append(p)
                else:  # orphan or duplicate: keep its content as text, Kiro would reject it
                    parts.append(TextPart(f"[Tool result for call {p.tool_call_id}]\n{p.content}"))
                    parts.extend(p.images)
            else:
                parts.append(p)
        missing = [cid for cid in pending if cid not in answered]
        if missing:
            parts = [ToolResultPart(cid, CUT_CALL if pending[cid].cut else MISSING_RESULT, True)
                     for cid in missing] + parts
        merged[i] = Message("user", parts)
        pending = {}
    return merged


# ---------------------------------------------------------------------------------------------
# Entries


def _image(p: ImagePart) -> dict[str, Any] | None:
    fmt = IMAGE_FORMATS.get(p.media_type.lower())
    if fmt is None or not p.data:
        return None
    return {"format": fmt, "source": {"bytes": p.data}}


def _user_parts(m: Message) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            if p.text:
                texts.append(p.text)
        elif isinstance(p, ImagePart):
            img = _image(p)
            if img is None:
                texts.append(f"[An image of type {p.media_type} was omitted: Kiro accepts jpeg, png, gif, webp]")
            else:
                images.append(img)
        elif isinstance(p, ToolResultPart):
            results.append({
                "toolUseId": p.tool_call_id,
                "content": [{"text": p.content if p.content else "(empty result)"}],
                "status": "error" if p.is_error else "success",
            })
            for im in p.images:
                img = _image(im)
                if img is not None:
                    images.append(img)
        elif isinstance(p, ThinkingPart) and not p.redacted and p.text:
            texts.append(p.text)
        elif isinstance(p, ToolCallPart):  # a tool call in a user turn cannot be expressed
            texts.append(f"[Tool call {p.name}: {orjson.dumps(p.arguments).decode()}]")
    return "\n".join(texts), images, results


def _user_entry(content: str, model_id: str, images: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"content": content, "modelId": model_id, "origin": "AI_EDITOR"}
    if images:
        msg["images"] = images
    if results:
        msg["userInputMessageContext"] = {"toolResults": results}
    return {"userInputMessage": msg}


def _user_from(m: Message, model_id: str) -> dict[str, Any]:
    text, images, results = _user_parts(m)
    if not text and not results:
        text = IMAGE_ONLY_USER if images else EMPTY_USER
    return _user_entry(text, model_id, images, results)


def _assistant_entry(m: Message, names: ToolNames) -> dict[str, Any]:
    thinking: list[str] = []
    texts: list[str] = []
    uses: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            if p.text:
                texts.append(p.text)
        elif isinstance(p, ThinkingPart):
            if p.text and not p.redacted:
                thinking.append(p.text)
        elif isinstance(p, ToolCallPart):
            args = p.arguments if isinstance(p.arguments, dict) else {"value": p.arguments}
            if "" in args:
                args = {k: v for k, v in args.items() if k != ""}
            uses.append({"toolUseId": p.id, "name": names.to_kiro(p.name), "input": args})
    content = "\n\n".join(texts)
    if thinking:
        head = "<thinking>" + "\n".join(thinking) + "</thinking>"
        content = head + "\n\n" + content if content else head
    msg: dict[str, Any] = {"content": content or EMPTY_ASSISTANT}
    if uses:
        msg["toolUses"] = uses
    return {"assistantResponseMessage": msg}


def _apply_tool_choice(conv: Conversation, text: str) -> str:
    tc = conv.tool_choice
    if not conv.tools or tc.mode == "auto":
        return text
    if tc.mode == "any":
        note = "You must respond by calling one of the provided tools."
    elif tc.mode == "tool" and tc.name:
        note = f"You must respond by calling the tool `{tc.name}`."
    else:
        note = "Do not call any tools in this reply; answer in text."
    return f"{text}\n\n[{note}]" if text else f"[{note}]"


def _json_instruction(schema: dict[str, Any] | None) -> str:
    s = ("Respond with a single valid JSON value and nothing else: no prose, no markdown code "
         "fences.")
    if schema:
        s += " It must conform to this JSON Schema:\n" + orjson.dumps(schema).decode()
    return s


def _with_placeholders(tools: list[dict[str, Any]], used: set[str], names: ToolNames) -> list[dict[str, Any]]:
    declared = {t["toolSpecification"]["name"] for t in tools}
    extra = []
    for name in sorted(used):
        kname = names.to_kiro(name)
        if kname not in declared:
            declared.add(kname)
            extra.append({"toolSpecification": {
                "name": kname,
                "description": "Tool used earlier in this conversation.",
                "inputSchema": {"json": {"type": "object", "properties": {},
                                         "additionalProperties": True}},
            }})
    return tools + extra if extra else tools

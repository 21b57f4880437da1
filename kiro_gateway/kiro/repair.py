"""Repairs for the Kiro request rules a body can break without anyone meaning it (kiro/rules.py).

The request builder already normalises what clients send, so a body Kiro refuses as "Improperly
formed" is one our normaliser did not foresee. For the rules below there is a repair that keeps
the conversation's meaning — a blank tool description gets the tool's name, a tool result that
answers nothing becomes text, a tool call left unanswered gets an "(no result)" error result — so
the upstream repairs the sent body and tries once more (docs/kiro-protocol.md, "Size and request
rules"). The others (a broken image, a model Kiro does not know, …) would change what the client
asked for; they are explained to the client instead.

Each repair works on the decoded body in place and over the whole body, not only where the rule
first broke: a body with one blank description usually has more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .rules import MAX_TOOL_DESCRIPTION

__all__ = ["REPAIRABLE", "repair"]

_EMPTY = "(empty)"
_NO_RESULT = "(no result was given for this tool call)"


def _messages(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, message) over the history, then the current user message."""
    state = body.get("conversationState") or {}
    for entry in state.get("history") or []:
        if isinstance(entry, dict):
            for role, msg in entry.items():
                if isinstance(msg, dict):
                    yield role, msg
    current = (state.get("currentMessage") or {}).get("userInputMessage")
    if isinstance(current, dict):
        yield "userInputMessage", current


def _context(msg: dict[str, Any]) -> dict[str, Any]:
    ctx = msg.get("userInputMessageContext")
    if not isinstance(ctx, dict):
        ctx = msg["userInputMessageContext"] = {}
    return ctx


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    current = body["conversationState"]["currentMessage"]["userInputMessage"]
    ctx = _context(current)
    tools = ctx.get("tools")
    if not isinstance(tools, list):
        tools = ctx["tools"] = []
    return tools


def _specs(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for tool in _tools(body):
        spec = tool.get("toolSpecification") if isinstance(tool, dict) else None
        if isinstance(spec, dict):
            yield spec


def _describe(body: dict[str, Any]) -> bool:
    changed = False
    for spec in _specs(body):
        desc = spec.get("description")
        if not isinstance(desc, str) or not desc.strip():
            spec["description"] = f"Tool {spec.get('name') or ''}".strip()
            changed = True
        elif len(desc) > MAX_TOOL_DESCRIPTION:
            spec["description"] = desc[: MAX_TOOL_DESCRIPTION - 1] + "…"
            changed = True
    return changed


def _schemas(body: dict[str, Any]) -> bool:
    changed = False
    for spec in _specs(body):
        schema = spec.get("inputSchema")
        if not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
            spec["inputSchema"] = {"json": {"type": "object", "properties": {}}}
            changed = True
    return changed


def _unique_tools(body: dict[str, Any]) -> bool:
    tools, seen, kept = _tools(body), set(), []
    for tool in tools:
        name = ((tool.get("toolSpecification") or {}) if isinstance(tool, dict) else {}).get("name")
        if name in seen:
            continue
        seen.add(name)
        kept.append(tool)
    changed = len(kept) < len(tools)
    tools[:] = kept
    return changed


def _declare_used(body: dict[str, Any]) -> bool:
    """Tools the history calls but the request does not declare get a minimal declaration."""
    declared = {spec.get("name") for spec in _specs(body)}
    tools, changed = _tools(body), False
    for role, msg in _messages(body):
        if role != "assistantResponseMessage":
            continue
        for use in msg.get("toolUses") or []:
            name = use.get("name") if isinstance(use, dict) else None
            if isinstance(name, str) and name and name not in declared:
                declared.add(name)
                tools.append({"toolSpecification": {
                    "name": name, "description": f"Tool {name} (called earlier in this conversation)",
                    "inputSchema": {"json": {"type": "object", "properties": {}}}}})
                changed = True
    return changed


def _result_text(result: dict[str, Any]) -> str:
    parts = [c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict)]
    return "\n".join(p for p in parts if isinstance(p, str))


def _pair_results(body: dict[str, Any]) -> bool:
    """Each user message answers exactly the tool calls of the assistant turn before it: a second
    answer to one call is dropped, an answer to no call becomes text, a call with no answer gets
    an error result."""
    changed = False
    expected: list[str] = []
    for role, msg in _messages(body):
        if role == "assistantResponseMessage":
            expected = [u["toolUseId"] for u in msg.get("toolUses") or []
                        if isinstance(u, dict) and isinstance(u.get("toolUseId"), str)]
            continue
        ctx = _context(msg)
        listed = ctx.get("toolResults")
        results: list[Any] = listed if isinstance(listed, list) else []
        kept: list[Any] = []
        seen: set[str] = set()
        orphans: list[str] = []
        for r in results:
            rid = r.get("toolUseId") if isinstance(r, dict) else None
            if rid in seen:
                changed = True
            elif rid in expected:
                seen.add(rid)
                kept.append(r)
            else:
                orphans.append(f"[tool result for {rid}]\n{_result_text(r) if isinstance(r, dict) else ''}")
                changed = True
        for rid in expected:
            if rid not in seen:
                kept.append({"toolUseId": rid, "status": "error", "content": [{"text": _NO_RESULT}]})
                changed = True
        if orphans:
            text = msg.get("content") if isinstance(msg.get("content"), str) else ""
            msg["content"] = "\n\n".join([*orphans, text] if text else orphans)
        if kept:
            ctx["toolResults"] = kept
        else:
            ctx.pop("toolResults", None)
        expected = []
    return changed


def _fill_empty(body: dict[str, Any]) -> bool:
    changed = False
    for role, msg in _messages(body):
        ctx = msg.get("userInputMessageContext") if role == "userInputMessage" else None
        answers = isinstance(ctx, dict) and bool(ctx.get("toolResults"))
        if msg.get("content") == "" and not answers:
            msg["content"] = _EMPTY
            changed = True
    return changed


def _input_objects(body: dict[str, Any]) -> bool:
    changed = False
    for role, msg in _messages(body):
        for use in (msg.get("toolUses") or []) if role == "assistantResponseMessage" else []:
            if isinstance(use, dict) and not isinstance(use.get("input"), dict):
                value = use.get("input")
                use["input"] = {} if value in (None, "") else {"value": value}
                changed = True
    return changed


_REPAIRS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "tool_description_blank": _describe,
    "tool_description_too_long": _describe,
    "tool_schema_invalid": _schemas,
    "tool_name_duplicate": _unique_tools,
    "tools_missing": _declare_used,
    "tool_not_declared": _declare_used,
    "tool_result_duplicate": _pair_results,
    "tool_result_orphan": _pair_results,
    "tool_result_missing": _pair_results,
    "current_content_empty": _fill_empty,
    "history_user_content_empty": _fill_empty,
    "assistant_content_empty": _fill_empty,
    "tool_use_input_not_object": _input_objects,
}

REPAIRABLE = frozenset(_REPAIRS)


def repair(body: dict[str, Any], rule: str) -> bool:
    """Repair `body` in place for `rule`; False when the rule has no repair (or nothing changed)."""
    fix = _REPAIRS.get(rule)
    if fix is None:
        return False
    try:
        return fix(body)
    except (KeyError, TypeError, AttributeError):  # a body too broken to walk: not repairable
        return False

"""Tool definitions in Kiro's form (docs/kiro-protocol.md, “Tools” / “Server tools, MCP and web search”).

Kiro rejects tool names over 64 characters and descriptions over 10000; clients (MCP servers in
particular) send both. Long names are shortened deterministically — a readable prefix plus a hash
of the full name — and mapped back in replies so the client only ever sees its own names. A long
description is cut in the tool spec and kept whole in the system prompt, so nothing is lost.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..core.conversation import Tool

__all__ = ["ToolNames", "kiro_tool_specs", "MAX_NAME", "MAX_DESCRIPTION"]

MAX_NAME = 64
MAX_DESCRIPTION = 10000
_KEEP = 10000 - 200  # room for the pointer to the full text


class ToolNames:
    """Client tool name ↔ the name Kiro sees. Only shortened names are stored."""

    __slots__ = ("_to_client", "_to_kiro")

    def __init__(self) -> None:
        self._to_client: dict[str, str] = {}
        self._to_kiro: dict[str, str] = {}

    def to_kiro(self, name: str) -> str:
        if len(name) <= MAX_NAME:
            return name
        short = self._to_kiro.get(name)
        if short is None:
            digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
            short = name[: MAX_NAME - 9] + "_" + digest
            self._to_kiro[name] = short
            self._to_client[short] = name
        return short

    def to_client(self, name: str) -> str:
        return self._to_client.get(name, name)


def _schema(parameters: Any) -> dict[str, Any]:
    """Kiro needs an object schema; keep the client's schema otherwise as it is."""
    if not isinstance(parameters, dict):
        return {"type": "object", "properties": {}}
    schema = parameters
    if schema.get("type") != "object" or not isinstance(schema.get("properties", {}), dict):
        schema = dict(schema)
        schema["type"] = "object"
        if not isinstance(schema.get("properties", {}), dict):
            schema["properties"] = {}
    if "properties" not in schema:
        schema = {**schema, "properties": {}}
    req = schema.get("required")
    if req is not None and not (isinstance(req, list) and all(isinstance(r, str) for r in req)):
        schema = {k: v for k, v in schema.items() if k != "required"}
    return schema


def kiro_tool_specs(tools: list[Tool], names: ToolNames) -> tuple[list[dict[str, Any]], str]:
    """Kiro tool specs, and the system-prompt text holding descriptions too long for Kiro."""
    specs: list[dict[str, Any]] = []
    long_docs: list[str] = []
    seen: set[str] = set()
    for t in tools:
        kname = names.to_kiro(t.name)
        if kname in seen:  # a duplicate definition would be rejected
            continue
        seen.add(kname)
        desc = (t.description or "").strip()
        if not desc:
            desc = f"Tool {t.name}"
        elif len(desc) > MAX_DESCRIPTION:
            long_docs.append(f"## Tool: {t.name}\n{desc}")
            desc = (desc[:_KEEP] + f"\n[Description truncated; the full text is in the system prompt "
                    f"under '## Tool: {t.name}'.]")
        specs.append({"toolSpecification": {"name": kname, "description": desc,
                                            "inputSchema": {"json": _schema(t.parameters)}}})
    docs = ""
    if long_docs:
        docs = "# Full documentation of tools whose descriptions were too long\n\n" + "\n\n".join(long_docs)
    return specs, docs

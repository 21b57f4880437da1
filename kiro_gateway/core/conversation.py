"""The neutral model in the middle of the gateway.

Every client dialect parses its request into a `Conversation`, and renders the `ReplyEvent`s that
the upstream codec produces. Nothing here knows about any client API or about Kiro's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


# ---------------------------------------------------------------------------------------------
# Request side


@dataclass(slots=True)
class TextPart:
    text: str


@dataclass(slots=True)
class ImagePart:
    media_type: str  # e.g. "image/png"
    data: str  # plain base64, no data: prefix


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: dict[str, Any]
    # The arguments were cut off: Kiro ended a long reply in the middle of this call, the client
    # could not parse them and did not run it. Its history keeps a short note instead of them.
    cut: bool = False

    @classmethod
    def cut_off(cls, id: str, name: str, chars: int) -> "ToolCallPart":
        note = f"the arguments were cut off after {chars} characters; the call was not run"
        return cls(id, name, {"cut_off": note}, True)


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: str
    is_error: bool = False
    images: list[ImagePart] = field(default_factory=list)


@dataclass(slots=True)
class ThinkingPart:
    text: str
    signature: str | None = None
    redacted: bool = False


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]


@dataclass(slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "any", "none", "tool"] = "auto"
    name: str | None = None


@dataclass(slots=True)
class Thinking:
    mode: Literal["off", "enabled", "adaptive"] = "off"
    budget: int = 0
    effort: str = "high"


@dataclass(slots=True)
class WebSearchTool:
    """A web search the client's API runs on its own servers (Anthropic's `web_search_*` tool,
    OpenAI's `web_search`, Gemini's `googleSearch`). Kiro's chat has no such tool; the gateway
    answers it through Kiro's MCP `web_search`, or leaves it out (`webSearch: off`). `max_uses`
    caps the searches of one reply; the domain lists filter what a search returns."""

    max_uses: int | None = None
    allowed_domains: list[str] = field(default_factory=list)
    blocked_domains: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Conversation:
    """One request in neutral form.

    `max_tokens` is the reply length the client asked for, None when it did not say. Kiro takes
    no such limit, so it only sizes the room kept free for the answer when the request is fitted
    into the model's window (capped there: kiro/request.py `reply_room`). Sampling settings such
    as temperature are not kept: Kiro's request has no place for them, so the dialects only check
    their type, as the client's own API would.

    `json_schema` not None is JSON mode: the reply must be one JSON value. `{}` is any value (the
    client asked for JSON without a schema); otherwise the schema is advisory, passed to the
    model. `json_mode` says the same as a flag.
    """

    model: str  # the name the client asked for; the codec maps it
    messages: list[Message]
    system: str = ""
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    thinking: Thinking = field(default_factory=Thinking)
    max_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    session_id: str | None = None
    stream: bool = False
    web_search: WebSearchTool | None = None  # the request declared a web search (never in `tools`)

    @property
    def json_mode(self) -> bool:
        return self.json_schema is not None

    def forget_content(self) -> None:
        """Drop the request's bulk once Kiro has it: a renderer needs only the settings, and an
        open stream should not keep a whole 100 KB conversation alive for minutes."""
        self.messages = []
        self.system = ""
        self.tools = []


# ---------------------------------------------------------------------------------------------
# Reply side: the events a streamed answer is made of, in order.


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True)
class ThinkingEnd:
    signature: str


@dataclass(slots=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(slots=True)
class ToolCallDelta:
    id: str
    arguments: str  # a fragment of the JSON object text


@dataclass(slots=True)
class ToolCallEnd:
    id: str


@dataclass(slots=True)
class SearchHit:
    """One web search result."""

    title: str
    url: str
    snippet: str = ""
    published: str | None = None  # when the page was published, ISO 8601 in UTC, if known


@dataclass(slots=True)
class WebSearchCall:
    """The gateway searches the web; its WebSearchResults, with the same id, follow."""

    id: str
    query: str


# Why a search gave no results (the codes of Anthropic's web_search_tool_result_error).
SearchError = Literal["unavailable", "invalid_tool_input", "query_too_long", "max_uses_exceeded",
                      "too_many_requests"]


@dataclass(slots=True)
class WebSearchResults:
    id: str
    query: str
    hits: list[SearchHit]
    error: SearchError | None = None


@dataclass(slots=True)
class CitedText:
    """Answer text that comes from one search result: a TextDelta with its source."""

    text: str
    source: SearchHit


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None  # from Kiro's context usage when it says
    output_tokens: int = 0
    credits: float | None = None
    web_searches: int = 0  # searches the gateway ran for this reply


StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "context_window_exceeded"]


@dataclass(slots=True)
class Stop:
    reason: StopReason
    stop_sequence: str | None = None


@dataclass(slots=True)
class Ping:
    """Nothing arrived for a while; renderers send their keep-alive."""


ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "rate_limit",
    "overloaded",
    "timeout",
    "upstream",
    "internal",
]


@dataclass(slots=True)
class ErrorEvent:
    kind: ErrorKind
    message: str


ReplyEvent = (TextDelta | ThinkingDelta | ThinkingEnd | ToolCallStart | ToolCallDelta | ToolCallEnd | Usage
              | Stop | Ping | ErrorEvent | WebSearchCall | WebSearchResults | CitedText)


class GatewayError(Exception):
    """A failure to report to the client in its own dialect, with a neutral kind and a status."""

    STATUS = {
        "invalid_request": 400,
        "authentication": 401,
        "permission": 403,
        "not_found": 404,
        "rate_limit": 429,
        "overloaded": 529,
        "timeout": 504,
        "upstream": 502,
        "internal": 500,
    }

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None,
                 retry_after: float | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status or self.STATUS[kind]
        self.retry_after = retry_after  # seconds until capacity returns, when known: a Retry-After header
        self.close = close  # the connection cannot be reused (a body left unread): Connection: close
        self.rule: str | None = None  # the upstream's request rule this broke, for the request log


class ContextOverflow(GatewayError):
    """The conversation does not fit the model's window (or Kiro's payload cap): each dialect words
    it the way its own clients recognise as "context full", so they compact and retry by themselves.
    The default message is Anthropic's ("prompt is too long: N tokens > M maximum"), which Claude
    Code matches; `tokens` is our count of what was sent (at least `limit` + 1: the model said no)."""

    def __init__(self, tokens: int, limit: int, detail: str = "") -> None:
        self.tokens, self.limit, self.detail = max(tokens, limit + 1), limit, detail
        message = f"prompt is too long: {self.tokens} tokens > {limit} maximum"
        super().__init__("invalid_request", message + (f" ({detail})" if detail else ""))
        self.reason = "CONTENT_LENGTH_EXCEEDS_THRESHOLD"

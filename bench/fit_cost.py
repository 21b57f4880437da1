"""What the size check costs: building the Kiro request of a ~500 KB session, first turn and next.

    python -m bench.fit_cost

On a 200k-token model the body (over the budget in bytes) is counted with the real tokenizer:
the first turn counts everything, the next only its new turn (counts are cached by content).
On a 1M model the bytes alone show it fits and nothing is counted. Medians of 5 runs.
"""

from __future__ import annotations

import statistics
import time

from kiro_gateway.core.conversation import Conversation, Message, TextPart, Tool, ToolCallPart, ToolResultPart
from kiro_gateway.kiro import fit
from kiro_gateway.kiro.models import ModelMapper
from kiro_gateway.kiro.request import RequestOptions, build_request

LINE = "    result = compute(values, options)  # a line of a source file the agent read\n"
TOOL = Tool("Read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})


def session(turns: int, chars: int) -> list[Message]:
    msgs = [Message("user", [TextPart("FIRST TASK")])]
    for i in range(turns):
        msgs.append(Message("assistant", [ToolCallPart(f"toolu_{i}", "Read", {"path": f"f{i}.py"})]))
        msgs.append(Message("user", [ToolResultPart(f"toolu_{i}", f"file {i}\n" + LINE * (chars // len(LINE)))]))
    msgs.append(Message("assistant", [TextPart("ok")]))
    msgs.append(Message("user", [TextPart("next?")]))
    return msgs


def build(msgs, model: str) -> float:
    conv = Conversation(model=model, messages=msgs, system="be careful " * 1000, tools=[TOOL], max_tokens=8000)
    t = time.perf_counter()
    build_request(conv, ModelMapper(), RequestOptions())
    return (time.perf_counter() - t) * 1000


def main() -> None:
    msgs = session(40, 12_000)  # ~500 KB of Kiro body
    print(f"{'model':22}{'first turn ms':>16}{'next turn ms':>16}")
    for model in ("claude-sonnet-4-5", "claude-sonnet-4-6"):
        firsts, nexts = [], []
        for _ in range(5):
            fit._CACHE.clear()
            firsts.append(build(msgs, model))
            more = msgs + [
                Message("assistant", [TextPart("and one more")]), Message("user", [TextPart("go on")])]
            nexts.append(build(more, model))
        window = "200k: counted" if model.endswith("4-5") else "1M: bytes only"
        print(f"{model + ' (' + window + ')':22}{statistics.median(firsts):>16.1f}{statistics.median(nexts):>16.1f}")


if __name__ == "__main__":
    main()

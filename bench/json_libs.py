"""msgspec vs orjson for the gateway's hot JSON, in this process (µs per call, best of 5).

    python -m bench.json_libs        # msgspec must be importable (pip install msgspec)

The structures: the 80 KB Claude Code body (decoded once a request), the Kiro body built from it
(encoded once a request), an assistantResponseEvent payload (decoded per frame, also into a
msgspec Struct) and an Anthropic text-delta event (encoded per frame).
"""

from __future__ import annotations

import timeit

import orjson

from bench.bodies import anthropic_body
from bench.dialects import kiro_request_for
from kiro_gateway.dialects.anthropic.parse import parse_request


def main() -> None:
    import msgspec

    class Text(msgspec.Struct, gc=False):
        content: str = ""

    body = orjson.dumps(anthropic_body("80k"))
    kiro = orjson.loads(kiro_request_for(parse_request(orjson.loads(body), None)))
    frame = orjson.dumps({"content": "The quick brown fox "})
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "The quick brown fox "}}
    dec, enc, tdec = msgspec.json.Decoder(), msgspec.json.Encoder(), msgspec.json.Decoder(Text)
    cases = [
        ("decode 80 KB client body", lambda: orjson.loads(body), lambda: dec.decode(body)),
        ("encode the Kiro body", lambda: orjson.dumps(kiro), lambda: enc.encode(kiro)),
        ("decode a text frame payload", lambda: orjson.loads(frame), lambda: dec.decode(frame)),
        ("... into a Struct (msgspec)", lambda: orjson.loads(frame)["content"], lambda: tdec.decode(frame).content),
        ("encode a text delta event", lambda: orjson.dumps(delta), lambda: enc.encode(delta)),
    ]
    print(f"{'':32s} {'orjson':>10s} {'msgspec':>10s}   (µs per call, best of 5)")
    for name, a, b in cases:
        n = 200 if "body" in name else 100_000
        ta = min(timeit.repeat(a, number=n, repeat=5)) / n * 1e6
        tb = min(timeit.repeat(b, number=n, repeat=5)) / n * 1e6
        print(f"{name:32s} {ta:10.2f} {tb:10.2f}")


if __name__ == "__main__":
    main()

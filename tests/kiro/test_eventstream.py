"""AWS event-stream framing (`kiro_gateway.kiro.eventstream`), docs/kiro-protocol.md, “Event-stream framing”.

Cross-checks, in order:
  1. the byte-exact 124-byte vector (docs/kiro-protocol.md, “Test vector”) (our encoder, our decoder, botocore's decoder);
  2. agreement with botocore's decoder and with an independent struct+zlib encoder written here,
     over thousands of generated frames fed in random splits (botocore ships no encoder);
  3. robustness: garbage never raises anything but `EventStreamError`, memory stays bounded,
     and valid frames around corrupt bytes are recovered exactly as the documented policy says;
  4. decoding cost is linear in the bytes received.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kiro_gateway.kiro import eventstream
from kiro_gateway.kiro.eventstream import (
    MAX_MESSAGE,
    MIN_MESSAGE,
    EventStreamDecoder,
    EventStreamError,
    Frame,
    encode_event,
    encode_exception,
    encode_frame,
)

# Decoding limits the tests rely on (docs/kiro-protocol.md, “Event-stream framing”), restated here on purpose.
PRELUDE_LEN = 12
SPEC_MAX_HEADERS = 128 * 1024

FAST = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# An independent reference encoder (struct + zlib only), able to emit all ten header types.

TYPE_CODES = {
    "true": 0,
    "false": 1,
    "byte": 2,
    "short": 3,
    "int": 4,
    "long": 5,
    "bytes": 6,
    "string": 7,
    "timestamp": 8,
    "uuid": 9,
}


def ref_header(name: str, kind: str, value: object) -> bytes:
    raw_name = name.encode("utf-8")
    out = struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">B", TYPE_CODES[kind])
    if kind in ("true", "false"):
        return out
    if kind == "byte":
        return out + struct.pack(">b", value)
    if kind == "short":
        return out + struct.pack(">h", value)
    if kind == "int":
        return out + struct.pack(">i", value)
    if kind in ("long", "timestamp"):
        return out + struct.pack(">q", value)
    if kind == "bytes":
        return out + struct.pack(">H", len(value)) + value
    if kind == "string":
        data = value.encode("utf-8")
        return out + struct.pack(">H", len(data)) + data
    if kind == "uuid":
        return out + value.bytes
    raise AssertionError(kind)


def kind_of(value: object) -> str:
    """The header type our encoder is expected to choose for a Python value."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    raise AssertionError(type(value))


def ref_frame_raw(header_block: bytes, payload: bytes) -> bytes:
    total = PRELUDE_LEN + len(header_block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_block))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + header_block + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def ref_frame_typed(typed_headers: list[tuple[str, str, object]], payload: bytes) -> bytes:
    return ref_frame_raw(b"".join(ref_header(n, k, v) for n, k, v in typed_headers), payload)


def ref_frame(headers: dict, payload: bytes) -> bytes:
    return ref_frame_typed([(n, kind_of(v), v) for n, v in headers.items()], payload)


def lying_prelude(total: int, hlen: int) -> bytes:
    """A prelude whose CRC is right but whose lengths say whatever we like."""
    head = struct.pack(">II", total, hlen)
    return head + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


# Strict views (type included: True == 1 in Python, so plain equality would hide bool/int mix-ups).


def ours_view(headers: dict) -> list:
    return [(k, type(v), v) for k, v in headers.items()]


def expected_ours(pairs) -> list:
    return [(k, type(v), v) for k, v in pairs]


def expected_boto(pairs) -> list:
    # botocore returns a uuid header as its 16 raw bytes.
    return [(k, bytes, v.bytes) if isinstance(v, uuid.UUID) else (k, type(v), v) for k, v in pairs]


def boto_decode(stream: bytes) -> list:
    buf = EventStreamBuffer()
    buf.add_data(stream)
    return list(buf)


def feed_checked(decoder: EventStreamDecoder, chunks) -> list[Frame]:
    """Feed every chunk; after each, the decoder must hold a bounded amount of data."""
    out: list[Frame] = []
    for chunk in chunks:
        got = decoder.feed(chunk)
        assert isinstance(got, list)
        out.extend(got)
        assert 0 <= decoder.buffered <= decoder.max_buffer
        # Anything it holds is an incomplete message, so never more than one maximal message.
        assert decoder.buffered < max(MIN_MESSAGE, decoder.max_message)
    return out


def one_byte_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def draw_chunks(data, stream: bytes) -> list[bytes]:
    """Split `stream` the way hypothesis likes: whole, 1-byte, fixed-size, or arbitrary cuts."""
    mode = data.draw(st.sampled_from(("whole", "one", "fixed", "cuts")), label="split mode")
    if mode == "whole":
        return [stream]
    if mode == "one":
        return one_byte_chunks(stream)
    if mode == "fixed":
        size = data.draw(st.integers(1, 64), label="chunk size")
        return [stream[i : i + size] for i in range(0, len(stream), size)]
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=40), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    # Cuts at 0 / len / duplicates of bounds give empty chunks, which must be harmless too.
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


# ---------------------------------------------------------------------------------------------
# Strategies

utf8_text = st.characters(codec="utf-8")  # no lone surrogates
header_names = st.text(utf8_text, min_size=1, max_size=20)
header_values = st.one_of(
    st.text(utf8_text, max_size=40),
    st.binary(max_size=40),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.uuids(),
)
header_dicts = st.dictionaries(header_names, header_values, max_size=6)
frames = st.tuples(header_dicts, st.binary(max_size=300))

typed_header_value = st.one_of(
    st.just(("true", True)),
    st.just(("false", False)),
    st.tuples(st.just("byte"), st.integers(-128, 127)),
    st.tuples(st.just("short"), st.integers(-(2**15), 2**15 - 1)),
    st.tuples(st.just("int"), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("long"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("bytes"), st.binary(max_size=40)),
    st.tuples(st.just("string"), st.text(utf8_text, max_size=40)),
    st.tuples(st.just("timestamp"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("uuid"), st.uuids()),
)
typed_headers = st.dictionaries(header_names, typed_header_value, max_size=8).map(
    lambda d: [(name, kind, value) for name, (kind, value) in d.items()]
)

# Small frames for the recovery tests: every run of consecutive corrupt bytes stays well below
# the decoder's give-up threshold, so exact recovery is the only acceptable outcome.
small_frames = st.tuples(
    st.dictionaries(
        st.text(utf8_text, min_size=1, max_size=8),
        st.one_of(st.text(utf8_text, max_size=12), st.integers(-(2**63), 2**63 - 1), st.booleans()),
        max_size=2,
    ),
    st.binary(max_size=100),
)


# ---------------------------------------------------------------------------------------------
# 1. The test vector (docs/kiro-protocol.md, “Test vector”)

VECTOR = bytes.fromhex(
    "0000007c0000005c3bddcf780b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e74"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065"
    "0700056576656e747b22636f6e74656e74223a224869227db02babdc"
)
VECTOR_HEADERS = [
    (":event-type", "assistantResponseEvent"),
    (":content-type", "application/json"),
    (":message-type", "event"),
]
VECTOR_PAYLOAD = b'{"content":"Hi"}'


def test_crc32_check_value():
    assert zlib.crc32(b"123456789") == 0xCBF43926
    # The checksum function the module really uses is the same ISO-HDLC CRC.
    assert eventstream.crc32(b"123456789") == 0xCBF43926


def test_vector_shape():
    assert len(VECTOR) == 124
    total, hlen, prelude_crc = struct.unpack_from(">III", VECTOR)
    assert (total, hlen, prelude_crc) == (124, 92, 0x3BDDCF78)
    assert struct.unpack_from(">I", VECTOR, 120)[0] == 0xB02BABDC
    assert zlib.crc32(VECTOR[:8]) == 0x3BDDCF78
    assert zlib.crc32(VECTOR[:120]) == 0xB02BABDC


def test_vector_encoded_byte_for_byte():
    assert encode_frame(VECTOR_HEADERS, VECTOR_PAYLOAD) == VECTOR
    assert encode_frame(dict(VECTOR_HEADERS), VECTOR_PAYLOAD) == VECTOR
    assert encode_event("assistantResponseEvent", VECTOR_PAYLOAD) == VECTOR
    assert ref_frame(dict(VECTOR_HEADERS), VECTOR_PAYLOAD) == VECTOR


@pytest.mark.parametrize("chunking", ["whole", "bytes"])
def test_vector_decoded_by_us(chunking):
    dec = EventStreamDecoder()
    chunks = [VECTOR] if chunking == "whole" else one_byte_chunks(VECTOR)
    msgs = feed_checked(dec, chunks)
    assert len(msgs) == 1
    (msg,) = msgs
    assert list(msg.headers.items()) == VECTOR_HEADERS
    assert msg.payload == VECTOR_PAYLOAD
    assert type(msg.payload) is bytes
    assert msg.message_type == "event"
    assert msg.event_type == "assistantResponseEvent"
    assert dec.buffered == 0
    assert dec.errors_seen == 0
    dec.raise_if_truncated()


def test_vector_decoded_by_botocore():
    (msg,) = boto_decode(VECTOR)
    assert list(msg.headers.items()) == VECTOR_HEADERS
    assert msg.payload == VECTOR_PAYLOAD
    assert msg.prelude.total_length == 124
    assert msg.prelude.headers_length == 92
    assert msg.prelude.crc == 0x3BDDCF78
    assert msg.crc == 0xB02BABDC


def test_encode_exception_and_message_properties():
    raw = encode_exception("ContentLengthExceededException", b'{"message":"too long"}')
    (boto,) = boto_decode(raw)
    (msg,) = EventStreamDecoder().feed(raw)
    expected = [
        (":exception-type", "ContentLengthExceededException"),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    assert list(msg.headers.items()) == expected == list(boto.headers.items())
    assert msg.payload == b'{"message":"too long"}' == boto.payload
    assert msg.message_type == "exception"
    assert msg.event_type is None
    # A message without :message-type counts as an event (docs/kiro-protocol.md, “Event-stream framing”).
    (bare,) = EventStreamDecoder().feed(encode_frame({}, b"{}"))
    assert bare.headers == {}
    assert bare.message_type == "event"
    assert bare.event_type is None


def test_empty_message_is_the_minimum_size():
    raw = encode_frame({}, b"")
    assert len(raw) == MIN_MESSAGE == 16
    assert raw == ref_frame_raw(b"", b"")
    (msg,) = EventStreamDecoder().feed(raw)
    assert (msg.headers, msg.payload) == ({}, b"")
    (boto,) = boto_decode(raw)
    assert (boto.headers, boto.payload) == ({}, b"")


def test_header_name_length_limits():
    longest = "n" * 255
    raw = encode_frame({longest: "v"}, b"p")
    assert raw == ref_frame({longest: "v"}, b"p")
    (msg,) = EventStreamDecoder().feed(raw)
    assert msg.headers == {longest: "v"}
    with pytest.raises(ValueError):
        encode_frame({"n" * 256: "v"}, b"")
    # Names are 1..255 bytes (AWS spec); an empty one must not be emitted silently, since our
    # decoder (rightly) rejects it and would drop the whole message.
    with pytest.raises(ValueError):
        encode_frame({"": "v"}, b"")


def test_integer_header_width_choice():
    for value, kind in [
        (0, "int"),
        (2**31 - 1, "int"),
        (-(2**31), "int"),
        (2**31, "long"),
        (-(2**31) - 1, "long"),
        (2**63 - 1, "long"),
        (-(2**63), "long"),
    ]:
        raw = encode_frame({"n": value}, b"")
        assert raw[12 + 2] == TYPE_CODES[kind], value
        (msg,) = EventStreamDecoder().feed(raw)
        assert msg.headers == {"n": value}
        assert type(msg.headers["n"]) is int


# ---------------------------------------------------------------------------------------------
# 2. Agreement with botocore and with the independent encoder


@settings(max_examples=300, **FAST)
@given(frame_list=st.integers(1, 20).flatmap(lambda n: st.lists(frames, min_size=n, max_size=n)), data=st.data())
def test_roundtrip_agrees_with_botocore(frame_list, data):
    """~300 examples × ~10 frames: thousands of frames through both decoders per run."""
    encoded = [encode_frame(h, p) for h, p in frame_list]
    # Our encoder is byte-identical to the independent one.
    for (h, p), raw in zip(frame_list, encoded):
        assert raw == ref_frame(h, p)
    stream = b"".join(encoded)

    boto = boto_decode(stream)
    assert len(boto) == len(frame_list)
    for (h, p), msg in zip(frame_list, boto):
        assert ours_view(msg.headers) == expected_boto(h.items())
        assert msg.payload == p

    for chunks in (draw_chunks(data, stream), one_byte_chunks(stream)):
        dec = EventStreamDecoder()
        msgs = feed_checked(dec, chunks)
        assert len(msgs) == len(frame_list)
        for (h, p), msg in zip(frame_list, msgs):
            assert ours_view(msg.headers) == expected_ours(h.items())
            assert msg.payload == p
        assert dec.buffered == 0
        assert dec.errors_seen == 0
        dec.raise_if_truncated()


@settings(max_examples=200, **FAST)
@given(frame_list=st.lists(st.tuples(typed_headers, st.binary(max_size=200)), min_size=1, max_size=10), data=st.data())
def test_all_ten_header_types_agree_with_botocore(frame_list, data):
    """Frames built independently with every wire type (byte, short, timestamp included)."""
    stream = b"".join(ref_frame_typed(h, p) for h, p in frame_list)
    boto = boto_decode(stream)
    dec = EventStreamDecoder()
    ours = feed_checked(dec, draw_chunks(data, stream))
    assert len(boto) == len(ours) == len(frame_list)
    for (h, p), b, o in zip(frame_list, boto, ours):
        pairs = [(name, value) for name, _kind, value in h]
        assert ours_view(o.headers) == expected_ours(pairs)
        assert ours_view(b.headers) == expected_boto(pairs)
        assert o.payload == b.payload == p
    assert dec.buffered == 0 and dec.errors_seen == 0


def test_large_frames_agree_with_botocore():
    payload = bytes(range(256)) * 4096  # 1 MiB
    headers = {":event-type": "big", "blob": b"\x00" * 65535, "s": "é" * 30000}
    raw = encode_frame(headers, payload)
    assert raw == ref_frame(headers, payload)
    (boto,) = boto_decode(raw)
    assert boto.headers == headers and boto.payload == payload
    dec = EventStreamDecoder()
    (msg,) = feed_checked(dec, [raw[i : i + 65536] for i in range(0, len(raw), 65536)])
    assert msg.headers == headers and msg.payload == payload


# ---------------------------------------------------------------------------------------------
# 3. Robustness


@st.composite
def chaos_pieces(draw):
    """Specs of stream pieces; payloads of CRC-valid pieces get unique markers later."""
    kind = draw(st.sampled_from(("frame", "flip", "trunc", "junk", "lie", "rawhdr")))
    if kind == "frame":
        return ("frame", draw(small_frames))
    if kind == "flip":
        bits = draw(st.lists(st.integers(0, 2**20), min_size=1, max_size=3))
        return ("flip", draw(small_frames), bits)
    if kind == "trunc":
        return ("trunc", draw(small_frames), draw(st.integers(0, 2**20)))
    if kind == "junk":
        return ("junk", draw(st.binary(max_size=200)))
    if kind == "lie":
        total = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 600)))
        hlen = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 600)))
        return ("lie", total, hlen, draw(st.binary(max_size=40)))
    return ("rawhdr", draw(st.binary(max_size=40)), draw(st.binary(max_size=40)))


def flip_bits(raw: bytes, bits) -> bytes:
    out = bytearray(raw)
    for bit in {b % (len(raw) * 8) for b in bits}:  # distinct bits: flips never cancel out
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=300, **FAST)
@given(
    pieces=st.lists(chaos_pieces(), max_size=12),
    limits=st.sampled_from([(MAX_MESSAGE, None), (512, 1024), (300, 200)]),
    data=st.data(),
)
def test_garbage_only_ever_raises_eventstream_error(pieces, limits, data):
    """Random bytes, bit-flipped frames (≤ 3 flips: CRC32 detects them all), truncations,
    lying preludes with correct CRCs, CRC-valid frames with random header blocks — any mix, any
    split. Nothing may escape but EventStreamError, the buffer stays bounded, and every message
    returned is a CRC-valid piece of the input (or a truncated one completed by chance), in input
    order."""
    stream = bytearray()
    valid: list[tuple[bytes, object]] = []  # (payload marker, expected headers or None)
    for i, piece in enumerate(pieces):
        marker = b"<%d>" % i
        kind = piece[0]
        if kind == "frame":
            h, p = piece[1]
            stream += encode_frame(h, marker + p)
            valid.append((marker + p, h))
        elif kind == "flip":
            h, p = piece[1]
            stream += flip_bits(encode_frame(h, marker + p), piece[2])
        elif kind == "trunc":
            h, p = piece[1]
            raw = encode_frame(h, marker + p)
            stream += raw[: 1 + piece[2] % (len(raw) - 1)]
            # When only a byte or two is cut, the bytes that follow can complete the frame by
            # chance (say the lost CRC byte was 0x00 and the next frame starts with 0x00); then
            # the decoder rightly returns it.
            valid.append((marker + p, h))
        elif kind == "junk":
            stream += piece[1]
        elif kind == "lie":
            stream += lying_prelude(piece[1], piece[2]) + piece[3]
        else:
            stream += ref_frame_raw(piece[1], marker + piece[2])
            valid.append((marker + piece[2], None))
    stream = bytes(stream)

    max_message, max_buffer = limits
    dec = EventStreamDecoder(max_message=max_message, max_buffer=max_buffer)
    msgs: list[Frame] = []
    raised = False
    try:
        for chunk in draw_chunks(data, stream):
            msgs.extend(dec.feed(chunk))
            assert 0 <= dec.buffered <= dec.max_buffer
    except EventStreamError:
        raised = True

    index = {payload: (n, headers) for n, (payload, headers) in enumerate(valid)}
    last = -1
    for msg in msgs:
        assert isinstance(msg, Frame)
        assert type(msg.payload) is bytes
        assert msg.payload in index, "decoder invented a message"
        n, headers = index[msg.payload]
        assert n > last, "messages out of order or duplicated"
        last = n
        if headers is not None:
            assert ours_view(msg.headers) == expected_ours(headers.items())
        for name, value in msg.headers.items():
            assert isinstance(name, str) and name
            assert isinstance(value, (bool, int, str, bytes, uuid.UUID))

    if not raised:
        try:
            dec.raise_if_truncated()
        except EventStreamError:
            assert dec.buffered > 0
        else:
            assert dec.buffered == 0


@settings(max_examples=200, **FAST)
@given(junk=st.binary(max_size=5000), data=st.data())
def test_random_bytes_only_raise_eventstream_error(junk, data):
    dec = EventStreamDecoder()
    try:
        msgs = feed_checked(dec, draw_chunks(data, junk))
        dec.raise_if_truncated()
    except EventStreamError:
        return
    # Random bytes essentially never contain a CRC-valid frame.
    assert msgs == []


def _acceptable_prelude(window: bytes, max_message: int = MAX_MESSAGE) -> bool:
    """Would a correct decoder start a message here? (CRC right and lengths sane.)"""
    if len(window) < PRELUDE_LEN:
        return False
    total, hlen, crc = struct.unpack_from(">III", window)
    return (
        zlib.crc32(window[:8]) == crc
        and MIN_MESSAGE <= total <= max_message
        and hlen <= total - MIN_MESSAGE
        and hlen <= SPEC_MAX_HEADERS
    )


@st.composite
def recoverable_pieces(draw):
    kind = draw(st.sampled_from(("ok", "ok", "junk", "flip_prelude", "flip_body", "lie")))
    if kind == "ok":
        return ("ok", draw(small_frames))
    if kind == "junk":
        return ("junk", draw(st.binary(min_size=1, max_size=200)))
    if kind == "flip_prelude":  # 1..3 flips inside the 12-byte prelude
        return ("flip_prelude", draw(small_frames), draw(st.lists(st.integers(0, 95), min_size=1, max_size=3)))
    if kind == "flip_body":  # 1..3 flips after the prelude (headers, payload or message CRC)
        return ("flip_body", draw(small_frames), draw(st.lists(st.integers(0, 2**20), min_size=1, max_size=3)))
    # A prelude with a correct CRC but impossible lengths: must be skipped like junk.
    total, hlen = draw(
        st.one_of(
            st.tuples(st.integers(MAX_MESSAGE + 1, 2**32 - 1), st.integers(0, 2**32 - 1)),
            st.tuples(st.integers(0, MIN_MESSAGE - 1), st.integers(0, 2**32 - 1)),
            st.integers(MIN_MESSAGE, 4000).flatmap(
                lambda t: st.tuples(st.just(t), st.integers(t - MIN_MESSAGE + 1, 2**32 - 1))
            ),
        )
    )
    return ("lie", total, hlen)


@settings(max_examples=300, **FAST)
@given(pieces=st.lists(recoverable_pieces(), min_size=1, max_size=12), data=st.data())
def test_recovery_after_corruption_is_exact(pieces, data):
    """Junk, lying preludes, and frames with a damaged prelude or body, between valid frames:
    every valid frame comes out, in order; the error count matches the documented policy
    (bad prelude → skip one byte; bad message CRC → skip the whole message)."""
    stream = bytearray()
    expected: list[tuple[dict, bytes]] = []
    expected_errors = 0
    scan: list[tuple[int, int]] = []  # byte ranges the decoder has to resync through
    for piece in pieces:
        start = len(stream)
        kind = piece[0]
        if kind == "ok":
            h, p = piece[1]
            stream += encode_frame(h, p)
            expected.append((h, p))
            continue
        if kind == "junk":
            stream += piece[1]
        elif kind == "lie":
            stream += lying_prelude(piece[1], piece[2])
        elif kind == "flip_prelude":
            raw = bytearray(encode_frame(*piece[1]))
            for bit in set(piece[2]):
                raw[bit // 8] ^= 1 << (bit % 8)
            stream += raw
        else:  # flip_body: the prelude stays valid, the message CRC catches the damage
            raw = encode_frame(*piece[1])
            body_bits = (len(raw) - PRELUDE_LEN) * 8
            damaged = bytearray(raw)
            for bit in {b % body_bits for b in piece[2]}:
                damaged[PRELUDE_LEN + bit // 8] ^= 1 << (bit % 8)
            stream += damaged
            expected_errors += 1
            continue
        expected_errors += len(stream) - start
        scan.append((start, len(stream)))
    stream = bytes(stream)
    # Exclude the (astronomically rare) case where corrupt bytes happen to form a valid prelude.
    for a, b in scan:
        for p in range(a, b):
            assume(not _acceptable_prelude(stream[p : p + PRELUDE_LEN]))

    dec = EventStreamDecoder()
    msgs = feed_checked(dec, draw_chunks(data, stream))
    assert [(m.headers, m.payload) for m in msgs] == expected
    for (h, _p), m in zip(expected, msgs):
        assert ours_view(m.headers) == expected_ours(h.items())
    if pieces[-1][0] in ("ok", "flip_body"):
        assert dec.buffered == 0
        dec.raise_if_truncated()
        assert dec.errors_seen == expected_errors
    else:
        # Resync stops when fewer than a prelude's worth of bytes remain; the trailing corrupt
        # region may span several adjacent pieces (e.g. a damaged frame then 3 junk bytes).
        region_start, region_end = scan[-1]
        for a, b in reversed(scan[:-1]):
            if b != region_start:
                break
            region_start = a
        tail = min(PRELUDE_LEN - 1, region_end - region_start)
        assert dec.buffered == tail
        assert dec.errors_seen == expected_errors - tail
        with pytest.raises(EventStreamError):
            dec.raise_if_truncated()


def test_corrupt_message_crc_skips_only_that_message():
    a = encode_event("assistantResponseEvent", b'{"content":"a"}')
    b = bytearray(encode_event("assistantResponseEvent", b'{"content":"b"}'))
    b[-1] ^= 0xFF
    c = encode_event("assistantResponseEvent", b'{"content":"c"}')
    for chunks in ([a + b + c], one_byte_chunks(a + bytes(b) + c)):
        dec = EventStreamDecoder()
        msgs = feed_checked(dec, chunks)
        assert [m.payload for m in msgs] == [b'{"content":"a"}', b'{"content":"c"}']
        assert dec.errors_seen == 1
        assert dec.buffered == 0
        dec.raise_if_truncated()


@pytest.mark.parametrize(
    "header_block",
    [
        b"\x01x\x0a",  # unknown header type 10
        b"\x01x\xff",  # unknown header type 255
        b"\x00\x07\x00\x00",  # empty header name (the spec requires 1..255 bytes)
        b"\x05abc",  # name longer than the header block
        b"\x01x\x07\x00\x05ab",  # string value longer than the block
        b"\x01x\x07\x00\x02\xff\xfe",  # string value that is not UTF-8
        b"\x02\xc3\x28\x00",  # name that is not UTF-8
        b"\x01x\x04\x00\x00",  # truncated int32
        b"\x01x\x05\x00",  # truncated int64
        b"\x01x\x09" + b"\x00" * 15,  # truncated uuid
        b"\x01x\x02",  # truncated byte
        b"\x01x\x03\x00",  # truncated short
        b"\x01x",  # name without a type
    ],
)
def test_malformed_headers_with_valid_crcs_skip_that_message(header_block):
    bad = ref_frame_raw(header_block, b"bad")
    good = encode_event("e", b"good")
    dec = EventStreamDecoder()
    msgs = feed_checked(dec, [good + bad + good])
    assert [m.payload for m in msgs] == [b"good", b"good"]
    assert dec.errors_seen == 1
    assert dec.buffered == 0


@settings(max_examples=100, **FAST)
@given(frame=small_frames, junk=st.binary(min_size=1, max_size=3000), data=st.data())
def test_junk_prefix_resyncs_to_next_frame(frame, junk, data):
    raw = encode_frame(*frame)
    stream = junk + raw + raw
    for p in range(len(junk)):
        assume(not _acceptable_prelude(stream[p : p + PRELUDE_LEN]))
    dec = EventStreamDecoder()
    msgs = feed_checked(dec, draw_chunks(data, stream))
    assert [(m.headers, m.payload) for m in msgs] == [frame, frame]
    assert dec.errors_seen == len(junk)  # exactly one skipped byte per junk byte
    assert dec.buffered == 0
    dec.raise_if_truncated()


@pytest.mark.parametrize(
    "total,hlen",
    [
        (2**32 - 1, 0),
        (MAX_MESSAGE + 1, 0),
        (0, 0),
        (MIN_MESSAGE - 1, 0),
        (100, 85),  # headers longer than the message allows
        (SPEC_MAX_HEADERS + 1000, SPEC_MAX_HEADERS + 1),  # headers beyond the spec's 128 KiB
    ],
)
def test_impossible_lengths_are_rejected_at_once(total, hlen):
    """A CRC-valid prelude declaring an impossible size must not make the decoder wait for it."""
    good = encode_event("e", b"{}")
    dec = EventStreamDecoder()
    msgs = feed_checked(dec, one_byte_chunks(lying_prelude(total, hlen) + good))
    assert [m.payload for m in msgs] == [b"{}"]
    assert dec.buffered == 0
    assert dec.errors_seen == PRELUDE_LEN


def test_oversize_declared_length_is_bounded_by_max_message():
    dec = EventStreamDecoder(max_message=4096)
    good = encode_event("e", b"{}")
    msgs = feed_checked(dec, [lying_prelude(4097, 0), good])
    assert [m.payload for m in msgs] == [b"{}"]
    assert dec.buffered == 0


def test_plausible_but_false_length_costs_one_message_then_recovers():
    """A prelude claiming 1000 bytes swallows 1000 bytes, fails its CRC, and the stream goes on."""
    dec = EventStreamDecoder(max_message=4096)
    good = encode_event("e", b'{"n":1}')
    filler = b"\x00" * 1200  # no valid prelude anywhere in zeros
    stream = lying_prelude(1000, 0) + filler + good
    msgs = feed_checked(dec, [stream[i : i + 100] for i in range(0, len(stream), 100)])
    assert [m.payload for m in msgs] == [b'{"n":1}']
    # one error for the 1000-byte pseudo-message, then one per zero byte after it
    assert dec.errors_seen == 1 + (PRELUDE_LEN + 1200 - 1000)
    assert dec.buffered == 0


def test_buffer_bound_raises_instead_of_growing():
    """max_buffer below max_message: a message that cannot fit fails the stream, promptly."""
    dec = EventStreamDecoder(max_message=100_000, max_buffer=1000)
    dec.feed(lying_prelude(100_000, 0))
    fed = PRELUDE_LEN
    with pytest.raises(EventStreamError):
        while fed < 100_000:
            dec.feed(b"\x00" * 100)
            fed += 100
            assert dec.buffered <= dec.max_buffer
    assert fed <= dec.max_buffer + 100


def test_stream_that_never_completes_its_message_is_reported():
    dec = EventStreamDecoder()
    assert dec.feed(lying_prelude(1000, 0) + b"x" * 500) == []
    assert dec.buffered == 512
    with pytest.raises(EventStreamError):
        dec.raise_if_truncated()


def test_long_corruption_gives_up_with_eventstream_error():
    """A long run of nothing-but-corruption fails the stream rather than scanning forever."""
    junk = bytes((i * 7 + 3) % 251 for i in range(200_000))
    assert not any(_acceptable_prelude(junk[p : p + PRELUDE_LEN]) for p in range(len(junk)))
    dec = EventStreamDecoder()
    with pytest.raises(EventStreamError):
        feed_checked(dec, [junk[i : i + 4096] for i in range(0, len(junk), 4096)])


def test_errors_reset_after_a_good_message():
    """Separated by valid frames, many corrupt stretches are tolerated (only consecutive ones count)."""
    junk = bytes((i * 7 + 3) % 251 for i in range(1000))
    good = encode_event("e", b"{}")
    stream = (junk + good) * 50  # 50_000 corrupt bytes in total
    dec = EventStreamDecoder()
    msgs = feed_checked(dec, [stream[i : i + 333] for i in range(0, len(stream), 333)])
    assert len(msgs) == 50
    assert dec.errors_seen == 50_000


def test_any_chunk_size_is_accepted():
    """Many valid frames delivered in one read bigger than max_buffer: still all decoded
    (the bound is on what the decoder keeps, not on the size of one read)."""
    frame = encode_frame({":event-type": "e"}, b"x" * 400)
    dec = EventStreamDecoder(max_message=1024, max_buffer=2048)
    msgs = feed_checked(dec, [frame * 10])
    assert len(msgs) == 10
    assert dec.buffered == 0


def test_one_big_read_with_default_limits():
    """e.g. a non-streaming caller feeding `await resp.read()` of a 20 MiB reply at once."""
    frame = encode_frame({":event-type": "e"}, b"y" * (5 * 1024 * 1024))
    dec = EventStreamDecoder()
    msgs = dec.feed(frame * 4)
    assert len(msgs) == 4
    assert all(len(m.payload) == 5 * 1024 * 1024 for m in msgs)
    assert dec.buffered == 0


def test_memory_does_not_grow_with_stream_length():
    """`buffered` only counts unconsumed bytes; this checks the decoder really lets go of the
    consumed ones (10 MiB of 2.5 KiB frames through it must not cost 10 MiB)."""
    frame = encode_frame({":event-type": "e"}, b"z" * 2500)
    stream = frame * (10 * 1024 * 1024 // len(frame))
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    dec = EventStreamDecoder()
    count = 0
    tracemalloc.start()
    try:
        for chunk in chunks:
            count += len(dec.feed(chunk))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(stream) // len(frame)
    assert dec.buffered == 0
    assert peak < 2 * 1024 * 1024, f"decoder peaked at {peak} bytes"


@pytest.mark.parametrize("cut", [1, 11, 12, 13, 50, 123])
def test_raise_if_truncated_raises_on_partial_message(cut):
    dec = EventStreamDecoder()
    assert dec.feed(VECTOR + VECTOR[:cut]) != []
    assert dec.buffered == cut
    with pytest.raises(EventStreamError):
        dec.raise_if_truncated()
    # The rest arrives after all: the message completes and the stream ends cleanly.
    (msg,) = dec.feed(VECTOR[cut:])
    assert msg.payload == VECTOR_PAYLOAD
    dec.raise_if_truncated()


def test_raise_if_truncated_quiet_on_clean_stream():
    dec = EventStreamDecoder()
    dec.raise_if_truncated()  # nothing received at all
    dec.feed(VECTOR * 3)
    dec.raise_if_truncated()
    assert dec.feed(b"") == []
    dec.raise_if_truncated()


# ---------------------------------------------------------------------------------------------
# 4. Linear cost (catches quadratic copying; bounds are generous on purpose)


def test_many_small_frames_in_7_byte_chunks_is_linear():
    count = 20_000
    stream = b"".join(encode_frame([(":event-type", "e"), ("n", i)], b'{"i":%d}' % i) for i in range(count))
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    dec = EventStreamDecoder()
    out: list[Frame] = []
    start = time.perf_counter()
    for chunk in chunks:
        out += dec.feed(chunk)
    elapsed = time.perf_counter() - start
    assert len(out) == count
    assert [m.headers["n"] for m in out] == list(range(count))
    assert out[-1].payload == b'{"i":%d}' % (count - 1)
    assert dec.buffered == 0
    assert elapsed < 3.0, f"{len(chunks)} feeds took {elapsed:.2f}s"


def test_one_8mb_payload_in_1kb_chunks_is_linear():
    payload = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    stream = encode_frame({":event-type": "big"}, payload)
    dec = EventStreamDecoder()
    out: list[Frame] = []
    start = time.perf_counter()
    for i in range(0, len(stream), 1024):
        out += dec.feed(stream[i : i + 1024])
        if i == 4 * 1024 * 1024:
            assert dec.buffered == 4 * 1024 * 1024 + 1024  # held, not yet returned
    elapsed = time.perf_counter() - start
    assert len(out) == 1
    assert out[0].payload == payload
    assert dec.buffered == 0
    assert elapsed < 3.0, f"8 MiB in 1 KiB chunks took {elapsed:.2f}s"


def test_lost_counts_messages_that_may_be_gone_but_not_a_few_stray_bytes():
    a = encode_event("assistantResponseEvent", b'{"content":"a"}')
    b = encode_event("assistantResponseEvent", b'{"content":"b"}')
    bad_msg, bad_prelude = bytearray(b), bytearray(b)
    bad_msg[-1] ^= 0xFF
    bad_prelude[8] ^= 0xFF
    cases = [(a + b"\x00" * 5 + b, 0),  # stray bytes too few to be a message
             (a + bytes(bad_msg) + a, 1),  # skipped whole
             (a + bytes(bad_prelude) + a, 1),  # skipped byte by byte: a run long enough to be one
             (a + b"\x00" * 40 + a, 1)]
    for stream, lost in cases:
        for chunks in ([stream], one_byte_chunks(stream)):
            dec = EventStreamDecoder()
            feed_checked(dec, chunks)
            assert dec.lost == lost, (stream, lost)

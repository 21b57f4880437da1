"""AWS event-stream framing (application/vnd.amazon.eventstream), docs/kiro-protocol.md, “Event-stream framing”.

A message on the wire:

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

all big-endian, CRC32 as zlib computes it. Kiro streams its reply as a sequence of such messages.

`EventStreamDecoder` is incremental: feed it whatever the socket gave (any split, any size) and it
returns the whole messages it now holds. It decodes straight from the chunk when nothing is held
back (the usual case), else from one buffer and a read offset, compacting only when the consumed
prefix is large, so decoding is linear in the bytes received. Corruption is recovered
from the way AWS's own decoders and kiro.rs do: a bad prelude skips one byte and resynchronises, a
bad message CRC skips the whole message. Either may lose a message — one skipped whole, or a
skipped run of bytes long enough to have held one — and `lost` counts those: the reply mapper
fails the reply rather than pass on a text with a hole (stray bytes too few to be a message are
only counted in `errors_seen`); too many consecutive errors, or a
buffer past its bound, raise `EventStreamError` so the caller can fail the stream cleanly instead
of hanging.

`encode_frame` is the inverse, used by the fake Kiro server and the tests.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any
from zlib import crc32

__all__ = [
    "EventStreamDecoder",
    "EventStreamError",
    "Frame",
    "encode_frame",
    "encode_event",
    "encode_exception",
    "MIN_MESSAGE",
    "MAX_MESSAGE",
]

PRELUDE = 12
MIN_MESSAGE = 16
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HEADERS = 128 * 1024
MAX_CONSECUTIVE_ERRORS = 5

_U32 = struct.Struct(">I")
_PRELUDE = struct.Struct(">III")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


# Kiro repeats a handful of header blocks (one per event type) thousands of times: parsing each
# once and reusing the result takes header parsing off the per-frame cost. Parsed headers are
# shared between messages, so they are read-only by contract.
_HEADER_CACHE: dict[bytes, dict[str, Any]] = {}
_HEADER_CACHE_SIZE = 256


class EventStreamError(Exception):
    """The byte stream cannot be decoded any further."""


class Frame:
    """One decoded event-stream message (a frame on the wire, not a conversation message): its headers (read-only, shared) and raw payload bytes."""

    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, Any], payload: bytes) -> None:
        self.headers = headers
        self.payload = payload

    @property
    def message_type(self) -> str:
        kind: str = self.headers.get(":message-type", "event")
        return kind

    @property
    def event_type(self) -> str | None:
        return self.headers.get(":event-type")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Frame({self.headers!r}, {self.payload[:80]!r})"


def _parse_headers(data: bytes | memoryview) -> dict[str, Any]:
    """Header block → dict. Raises ValueError on any malformed entry."""
    headers: dict[str, Any] = {}
    pos = 0
    end = len(data)
    while pos < end:
        name_len = data[pos]
        pos += 1
        if name_len == 0 or pos + name_len + 1 > end:
            raise ValueError("header name out of bounds")
        name = bytes(data[pos : pos + name_len]).decode("utf-8")
        pos += name_len
        kind = data[pos]
        pos += 1
        if kind == 7 or kind == 6:  # string / bytes: u16 length + data
            if pos + 2 > end:
                raise ValueError("header length out of bounds")
            (length,) = _U16.unpack_from(data, pos)
            pos += 2
            if pos + length > end:
                raise ValueError("header value out of bounds")
            raw = bytes(data[pos : pos + length])
            pos += length
            value: object = raw.decode("utf-8") if kind == 7 else raw
        elif kind == 0:
            value = True
        elif kind == 1:
            value = False
        elif kind == 2:
            if pos + 1 > end:
                raise ValueError("header value out of bounds")
            value = struct.unpack_from(">b", data, pos)[0]
            pos += 1
        elif kind == 3:
            if pos + 2 > end:
                raise ValueError("header value out of bounds")
            value = _I16.unpack_from(data, pos)[0]
            pos += 2
        elif kind == 4:
            if pos + 4 > end:
                raise ValueError("header value out of bounds")
            value = _I32.unpack_from(data, pos)[0]
            pos += 4
        elif kind == 5 or kind == 8:  # long / timestamp (ms since epoch)
            if pos + 8 > end:
                raise ValueError("header value out of bounds")
            value = _I64.unpack_from(data, pos)[0]
            pos += 8
        elif kind == 9:
            if pos + 16 > end:
                raise ValueError("header value out of bounds")
            value = uuid.UUID(bytes=bytes(data[pos : pos + 16]))
            pos += 16
        else:
            raise ValueError(f"unknown header type {kind}")
        headers[name] = value
    return headers


class EventStreamDecoder:
    """Incremental, CRC-checked decoder with bounded memory and resynchronisation."""

    __slots__ = ("_buf", "_pos", "_errors", "_run", "max_message", "max_buffer", "errors_seen", "lost")

    def __init__(self, max_message: int = MAX_MESSAGE, max_buffer: int | None = None) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._errors = 0
        self.errors_seen = 0
        # Messages that may have been lost: skipped whole (a valid prelude, then a bad CRC or bad
        # headers), or a run of skipped bytes long enough to have held one (a corrupt prelude).
        self.lost = 0
        self._run = 0  # bytes skipped since the last message boundary
        self.max_message = max_message
        # A buffer never needs to hold more than one maximal message plus one read.
        self.max_buffer = max_buffer if max_buffer is not None else max_message + 1024 * 1024

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a returned message."""
        return len(self._buf) - self._pos

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add bytes from the wire; return every complete message they finish."""
        if self._pos == len(self._buf):
            # Nothing held back (the usual case): decode straight from the chunk; only an
            # incomplete tail is copied into the buffer.
            if self._pos:
                self._buf.clear()
                self._pos = 0
            data: bytes | bytearray = chunk
        else:
            buf = self._buf
            if self._pos > 65536:
                del buf[: self._pos]  # compact rarely: amortised O(1) per byte
                self._pos = 0
            buf += chunk
            data = buf
        out: list[Frame] = []
        pos = self._pos if data is self._buf else 0
        end = len(data)
        cache = _HEADER_CACHE
        append = out.append
        while end - pos >= PRELUDE:
            total, hlen, prelude_crc = _PRELUDE.unpack_from(data, pos)
            if (
                crc32(data[pos : pos + 8]) != prelude_crc
                or total < MIN_MESSAGE
                or total > self.max_message
                or hlen > total - MIN_MESSAGE
                or hlen > MAX_HEADERS
            ):
                pos += 1  # resynchronise one byte further on
                self._run += 1
                self._error()
                continue
            if self._run:
                if self._run >= MIN_MESSAGE:
                    self.lost += 1
                self._run = 0
            if end - pos < total:
                break  # wait for the rest of this message
            body_end = pos + total - 4
            if crc32(data[pos:body_end]) != _U32.unpack_from(data, body_end)[0]:
                pos += total
                self.lost += 1
                self._error()
                continue
            hstart = pos + PRELUDE
            raw_headers = data[hstart : hstart + hlen]
            if type(raw_headers) is not bytes:  # a slice of the buffer (a bytearray) has no hash
                raw_headers = bytes(raw_headers)
            headers = cache.get(raw_headers)
            if headers is None:
                try:
                    headers = _parse_headers(raw_headers)
                except (ValueError, UnicodeDecodeError):
                    pos += total
                    self.lost += 1
                    self._error()
                    continue
                if len(cache) < _HEADER_CACHE_SIZE:
                    cache[raw_headers] = headers
            append(Frame(headers, bytes(data[hstart + hlen : body_end])))
            self._errors = 0
            pos += total
        if data is self._buf:
            self._pos = pos
        elif pos < end:  # an incomplete message: kept for the next chunk
            self._buf += chunk[pos:]
            self._pos = 0
        # Bound what is kept, not the size of one read: a single chunk holding many whole
        # messages is fine. What remains is at most one incomplete message (< max_message).
        if end - pos > self.max_buffer:
            raise EventStreamError("event-stream buffer bound exceeded")
        return out

    def _error(self) -> None:
        self._errors += 1
        self.errors_seen += 1
        if self._errors > MAX_CONSECUTIVE_ERRORS * 1024:
            # Byte-wise resync counts each skipped byte; a run this long is not a glitch.
            raise EventStreamError("event stream is corrupt beyond recovery")

    def raise_if_truncated(self) -> None:
        """Raise if the stream ended inside a message (called at end of stream)."""
        if self.buffered:
            raise EventStreamError(f"stream ended inside a message ({self.buffered} bytes left)")


# ---------------------------------------------------------------------------------------------
# Encoding (the fake upstream and the tests)


def _encode_header(name: str, value: object) -> bytes:
    raw_name = name.encode("utf-8")
    if not 1 <= len(raw_name) <= 255:
        raise ValueError(f"header name must be 1..255 bytes, got {len(raw_name)}")
    head = bytes([len(raw_name)]) + raw_name
    if isinstance(value, bool):
        return head + bytes([0 if value else 1])
    if isinstance(value, str):
        data = value.encode("utf-8")
        return head + b"\x07" + _U16.pack(len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return head + b"\x06" + _U16.pack(len(value)) + bytes(value)
    if isinstance(value, uuid.UUID):
        return head + b"\x09" + value.bytes
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return head + b"\x04" + _I32.pack(value)
        return head + b"\x05" + _I64.pack(value)
    raise TypeError(f"unsupported header value {type(value).__name__}")


def encode_frame(headers: dict[str, Any] | list[tuple[str, object]], payload: bytes) -> bytes:
    """Build one event-stream message (headers in the given order)."""
    items = headers.items() if isinstance(headers, dict) else headers
    hbytes = b"".join(_encode_header(k, v) for k, v in items)
    total = PRELUDE + len(hbytes) + len(payload) + 4
    prelude = _U32.pack(total) + _U32.pack(len(hbytes))
    prelude += _U32.pack(crc32(prelude))
    body = prelude + hbytes + payload
    return body + _U32.pack(crc32(body))


def _encode_typed(type_header: str, type_name: str, message_type: str, payload: bytes) -> bytes:
    """A typed Kiro message, headers in the order Kiro's own frames use (docs/kiro-protocol.md, “Event-stream framing”)."""
    return encode_frame(
        [
            (type_header, type_name),
            (":content-type", "application/json"),
            (":message-type", message_type),
        ],
        payload,
    )


def encode_event(event_type: str, payload: bytes) -> bytes:
    return _encode_typed(":event-type", event_type, "event", payload)


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    return _encode_typed(":exception-type", exception_type, "exception", payload)

"""Binary mode: 4-byte big-endian length + one msgpack map per frame (protocol.md section 2)."""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from mq.codec.binary_ops import READERS
from mq.codec.commands import Command, Rejected
from mq.codec.replies import Published, Reply
from mq.errors import Code, MQError, bad_request
from mq.limits import MAX_FRAME_BYTES_CEILING

PREFIX_BYTES = 4
_PREFIX = struct.Struct(">I")  # the frame length


def _rid(m: dict[str, Any]) -> int | None:
    rid = m.get("rid")
    if rid is None or (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0):
        return rid
    raise bad_request(f"rid must be a non-negative integer, got {rid!r}")


_STR_ONLY = frozenset({str})


def command_from_map(m: object) -> Command | Rejected:
    """Turn one decoded msgpack object into a command, or say why not."""
    if not isinstance(m, dict):
        return Rejected(None, MQError(Code.BAD_FRAME, "a frame must hold one msgpack map"))
    if not _STR_ONLY.issuperset(map(type, m)):  # every key a str: one C loop, no generator
        return Rejected(None, MQError(Code.BAD_FRAME, "the keys of a request map must be strings"))
    try:
        rid = _rid(m)
    except MQError as e:
        return Rejected(None, e)
    op = m.get("op")
    read = READERS.get(op) if isinstance(op, str) else None
    if read is None:
        return Rejected(rid, MQError(Code.UNKNOWN_OP, f"unknown op {op!r}; see protocol.md 2.3"))
    try:
        return read(m, rid)
    except MQError as e:
        return Rejected(rid, e)
    except (ValueError, TypeError, OverflowError) as e:  # a value no check anticipated
        return Rejected(rid, bad_request(f"invalid field in {op!r}: {e}"))


class BinaryDecoder:
    """Splits a byte stream into frames and frames into commands.

    The length prefix is checked against `max_frame_bytes` before the payload is buffered, so a
    huge prefix costs nothing. After a fatal error the decoder is closed and ignores input.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        if not 1 <= max_frame_bytes <= MAX_FRAME_BYTES_CEILING:
            raise ValueError(f"max_frame_bytes must be 1..{MAX_FRAME_BYTES_CEILING}")
        self.max_frame_bytes = max_frame_bytes
        self.bound_name = "max_frame_bytes"  # the setting a refused frame's error names
        self._buffer = bytearray()
        self.closed = False

    def bound(self, max_bytes: int, name: str) -> None:
        """Frames above `max_bytes` are FRAME_TOO_LARGE from now on, naming the setting `name`
        (a server bounds a client more tightly before it authenticates)."""
        self.max_frame_bytes, self.bound_name = max_bytes, name

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Command | Rejected]:
        if self.closed:
            return []
        # Frames are unpacked where they lie, through a view, not copied out one by one. The
        # view is of bytes (the data itself, or one copy of what was pending with it), never of
        # the buffer, which must stay free to change; the buffer keeps only an unfinished frame.
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) >= PREFIX_BYTES:
                (size,) = _PREFIX.unpack_from(buffer)
                if size <= self.max_frame_bytes and len(buffer) < PREFIX_BYTES + size:
                    return []  # a big frame still coming: no copy per piece of it
            data = bytes(buffer)
            buffer.clear()
        out: list[Command | Rejected] = []
        pos, end = 0, len(data)
        view = memoryview(data)
        while end - pos >= PREFIX_BYTES:
            (size,) = _PREFIX.unpack_from(data, pos)
            if size > self.max_frame_bytes:
                out.append(Rejected(None, MQError(
                    Code.FRAME_TOO_LARGE,
                    f"frame of {size} bytes is above {self.bound_name}={self.max_frame_bytes}")))
                self.closed = True
                return out
            start = pos + PREFIX_BYTES
            if size == 0:
                out.append(Rejected(None, MQError(Code.BAD_FRAME, "frame length 0 is invalid")))
                pos = start
                continue
            if end - start < size:
                break
            pos = start + size
            out.append(_decode_payload(view[start:pos]))
        if pos < end:
            buffer += view[pos:]
        return out


def _decode_payload(payload: memoryview) -> Command | Rejected:
    try:
        # strict_map_key refuses map keys other than str and bin at any depth (command_from_map
        # refuses bin keys too): a map with string keys is all a request holds (protocol.md 2.1).
        # Nothing decoded refers to `payload`: bin values come out as bytes of their own.
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several unrelated types for bad input
        return Rejected(None, MQError(Code.BAD_FRAME, f"payload is not valid msgpack ({e})"))
    return command_from_map(obj)


# One packer for every frame: packb builds a new one per call, over half the cost of a small
# reply. Not for several threads at once: the broker encodes on its event loop thread only.
_PACKER = msgpack.Packer(use_bin_type=True)


def encode_frame(payload: dict[str, Any]) -> bytes:
    body: bytes = _PACKER.pack(payload)
    return len(body).to_bytes(PREFIX_BYTES, "big") + body


def encode_reply(rid: int | None, reply: Reply) -> bytes:
    """A successful reply: `rid`, `ok`, then the reply's own fields."""
    if type(reply) is Published:  # one per message published: its map spelled out
        return encode_frame({"rid": rid, "ok": True, "msg_id": reply.msg_id})
    return encode_frame({"rid": rid, "ok": True, **reply.fields()})


def encode_error(rid: int | None, error: MQError) -> bytes:
    return encode_frame({"rid": rid, "ok": False, "code": error.code.value,
                         "message": error.message, "fatal": error.fatal, **error.details})

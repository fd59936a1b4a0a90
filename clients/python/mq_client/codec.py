"""Binary framing of the mq protocol, sans-IO (protocol.md section 2.1).

A frame is a 4-byte big-endian payload length N followed by N bytes holding exactly one
msgpack map with string keys. `encode_frame` turns a map into bytes; `FrameDecoder` turns a
stream of bytes, arriving in any chunking, into maps. Neither touches a socket, so both clients
(asyncio and blocking) share them and tests drive them with plain bytes.

The decoder checks each length prefix as soon as its 4 bytes are in, before it waits for (and
so buffers) the payload: a hostile or broken peer cannot make it hold more than
`max_frame_bytes` plus one read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import msgpack  # ships no type information

from mq_client.errors import FrameTooLarge, ProtocolError

PREFIX_BYTES = 4
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
"""The broker's default `max_frame_bytes` (protocol.md section 7), in bytes."""
MAX_FRAME_BYTES_CEILING = 64 * 1024 * 1024
"""No broker accepts or sends a larger payload (protocol.md section 1), in bytes."""

_packers = threading.local()


def _packer() -> msgpack.Packer:
    # One Packer per thread, reused: building one per frame costs more than packing a small map.
    # Per thread because a Packer has a buffer of its own; the blocking client encodes on the
    # caller's thread and on its heartbeat thread.
    try:
        packer: msgpack.Packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer


def encode_frame(message: Mapping[str, Any], *, max_frame_bytes: int = MAX_FRAME_BYTES_CEILING) -> bytes:
    """Encode one map as a frame: length prefix + msgpack (bytes as bin, str as str).

    Raises `FrameTooLarge` (not fatal: nothing was sent) when the payload is above
    `max_frame_bytes` bytes, since the broker would answer it by closing the connection.
    """
    payload: bytes = _packer().pack(message)  # a failed pack leaves the Packer clean
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(
            FrameTooLarge.CODE,
            f"frame of {len(payload)} bytes is above max_frame_bytes={max_frame_bytes}; not sent",
            False,
        )
    return len(payload).to_bytes(PREFIX_BYTES, "big") + payload


def _reject_ext(code: int, data: bytes) -> object:
    # The protocol uses no msgpack extension types; an ext in a frame means garbage.
    raise ProtocolError(f"msgpack extension type {code} is not part of the protocol")


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Decode one frame payload (no length prefix) into a map with string keys.

    Raises `ProtocolError` unless the payload is exactly one msgpack map with str keys.
    """
    try:
        obj = msgpack.unpackb(payload, raw=False, ext_hook=_reject_ext, strict_map_key=False)
    except ProtocolError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # ValueError covers ExtraData, FormatError, StackError and invalid UTF-8 in a str;
        # TypeError covers unhashable map keys (a map or array used as a key).
        raise ProtocolError(f"payload is not one msgpack map: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"payload is a msgpack {type(obj).__name__}, not a map")
    for key in obj:
        if not isinstance(key, str):
            raise ProtocolError(f"map key {key!r} is not a string")
    return obj


class FrameDecoder:
    """Streaming frame decoder: `feed` bytes in, get the complete maps out.

    After a bad payload the decoder stays in step (the length prefix delimited it) and may be fed
    again; after a bad length prefix (zero, or above `max_frame_bytes`) it cannot find the next
    frame, so every later `feed` raises too.
    """

    __slots__ = ("_broken", "_buffer", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES_CEILING) -> None:
        """`max_frame_bytes`: the largest payload accepted, in bytes (prefix not counted)."""
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be at least 1")
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._broken: str | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add `data` and return every map completed by it, in stream order.

        Raises `ProtocolError` on a bad length prefix or a payload that is not one map. If good
        frames precede a bad one in the same call, they are returned and the error is raised by
        the next `feed` (pass b"" to get it), so no good frame is lost to a later bad one.
        """
        if self._broken is not None:
            raise ProtocolError(self._broken)
        buf = self._buffer
        buf += data
        frames: list[dict[str, Any]] = []
        pos = 0
        try:
            while len(buf) - pos >= PREFIX_BYTES:
                size = int.from_bytes(buf[pos : pos + PREFIX_BYTES], "big")
                if size == 0 or size > self.max_frame_bytes:
                    self._broken = (
                        "frame length 0 is invalid"
                        if size == 0
                        else f"frame of {size} bytes is above max_frame_bytes={self.max_frame_bytes}"
                    )
                    if frames:
                        break
                    raise ProtocolError(self._broken)
                end = pos + PREFIX_BYTES + size
                if len(buf) < end:
                    break
                try:
                    frame = decode_payload(bytes(buf[pos + PREFIX_BYTES : end]))
                except ProtocolError:
                    if frames:
                        break  # hand out the good frames first; the bad one stays buffered
                    pos = end  # consume it so the stream stays in step
                    raise
                frames.append(frame)
                pos = end
        finally:
            # Trim once per call rather than once per frame: keeps a big feed linear.
            del buf[:pos]
        return frames

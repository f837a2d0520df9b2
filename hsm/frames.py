"""Frames over a child process's pipes: what the signing process
(:mod:`sealgate.hsm.service` ↔ :mod:`sealgate.hsm.worker`) and the audit writer
(:mod:`sealgate.gateway.audit` ↔ :mod:`sealgate.gateway.audit_writer`) share.

A frame is a 4-byte big-endian length, then that many bytes of msgpack. Each side reads
with :func:`read_frame` (the child, blocking) or :func:`read_frame_async` (the parent's
event loop); the parent starts, watches and stops its child with :mod:`sealgate.hsm.child`.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, BinaryIO

import msgpack

from sealgate.errors import Error

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "ProtocolError",
    "frame_length",
    "pack",
    "read_frame",
    "read_frame_async",
    "split",
    "unpack",
    "write_frame",
]

HEADER = struct.Struct(">I")
#: A batch of a few thousand RSA-3072 signatures, or an audit group, is a few MB at
#: most; anything far larger is a bug.
MAX_FRAME = 64 * 1024 * 1024


class ProtocolError(Error):
    """The peer sent something that is not a frame: truncated, oversized, undecodable."""


def pack(obj: Any) -> bytes:
    payload: bytes = msgpack.packb(obj, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


def unpack(payload: bytes) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, use_list=True)
    except Exception as exc:
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from exc


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return int(length)


def split(data: bytes | bytearray) -> tuple[list[Any], int]:
    """The whole frames at the start of ``data`` and how many bytes they take; an
    incomplete frame at the end is left (for a reader that gets more bytes later)."""
    messages: list[Any] = []
    at = 0
    while len(data) - at >= HEADER.size:
        end = at + HEADER.size + frame_length(bytes(data[at : at + HEADER.size]))
        if end > len(data):
            break
        messages.append(unpack(bytes(data[at + HEADER.size : end])))
        at = end
    return messages, at


def write_frame(stream: BinaryIO, obj: Any) -> None:
    """Blocking write of one frame, flushed (the peer waits for it)."""
    stream.write(pack(obj))
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """Blocking read of one frame; ``None`` at a clean end of stream."""
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) != HEADER.size:
        raise ProtocolError("truncated frame header")
    length = frame_length(header)
    payload = stream.read(length)
    if len(payload) != length:
        raise ProtocolError("truncated frame")
    return unpack(payload)


async def read_frame_async(reader: asyncio.StreamReader) -> Any:
    """One frame; ``asyncio.IncompleteReadError`` if the stream ends first."""
    header = await reader.readexactly(HEADER.size)
    return unpack(await reader.readexactly(frame_length(header)))

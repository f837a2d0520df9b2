"""The frames both child processes speak: round trip, end of stream, and refusals."""

from __future__ import annotations

import asyncio
import io

import pytest

from sealgate.hsm import frames


def test_frames_round_trip_and_end_cleanly() -> None:
    stream = io.BytesIO(frames.pack(["ready"]) + frames.pack([7, [b"\x00sig", None]]))
    assert frames.read_frame(stream) == ["ready"]
    assert frames.read_frame(stream) == [7, [b"\x00sig", None]]
    assert frames.read_frame(stream) is None  # the peer closed the pipe


@pytest.mark.parametrize(
    "data",
    [
        frames.pack(["x"])[:2],  # header cut short
        frames.pack(["a long enough frame"])[:-3],  # payload cut short
        frames.HEADER.pack(frames.MAX_FRAME + 1),  # oversized: a bug, not a frame
        frames.HEADER.pack(1) + b"\xc1",  # 0xc1 is never valid msgpack
    ],
    ids=["truncated-header", "truncated-payload", "oversized", "undecodable"],
)
def test_broken_frames_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(frames.ProtocolError):
        frames.read_frame(io.BytesIO(data))


async def test_the_async_reader_reads_what_the_writer_wrote() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frames.pack([1, "ok", None]))
    reader.feed_eof()
    assert await frames.read_frame_async(reader) == [1, "ok", None]
    with pytest.raises(asyncio.IncompleteReadError):
        await frames.read_frame_async(reader)


def test_split_takes_the_whole_frames_and_leaves_a_partial_one() -> None:
    whole = frames.pack([1, "drain"]) + frames.pack([2, "head"])
    partial = frames.pack([3, "probe"])
    for cut in range(len(partial)):
        messages, used = frames.split(bytearray(whole + partial[:cut]))
        assert messages == [[1, "drain"], [2, "head"]]
        assert used == len(whole)
    assert frames.split(whole + partial) == (
        [[1, "drain"], [2, "head"], [3, "probe"]],
        len(whole + partial),
    )
    with pytest.raises(frames.ProtocolError):
        frames.split(frames.HEADER.pack(frames.MAX_FRAME + 1))

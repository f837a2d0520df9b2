"""The msgpack codec: round trip, and every malformed input is a CacheDataError."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealgate.cache.codec import FORMAT_VERSION, CacheDataError, decode_status, encode_status
from sealgate.verify.registry import ProofStatus, Status
from tests.cache.samples import BASE, ENDORSED, statuses


def fields_of(status: ProofStatus) -> list[Any]:
    """The wire array, built independently of the module: every field, in order."""
    values = [getattr(status, f.name) for f in dataclasses.fields(status)]
    return [FORMAT_VERSION, *[v.value if isinstance(v, Status) else v for v in values]]


@given(statuses)
def test_round_trip(status: ProofStatus) -> None:
    decoded = decode_status(encode_status(status))
    assert decoded == status
    assert type(decoded.status) is Status


@pytest.mark.parametrize("status", [BASE, ENDORSED], ids=["unit seal", "endorsed"])
def test_wire_form_is_a_versioned_array_with_the_status_string(status: ProofStatus) -> None:
    assert msgpack.unpackb(encode_status(status)) == fields_of(status)
    assert decode_status(encode_status(status)) == status


def test_a_format_1_value_is_a_miss() -> None:
    """Format 1 had no data owner or endorsement: read as format 2 it could only say
    "not endorsed", perhaps wrongly, so it is refused whatever it holds."""
    old = [1, *fields_of(BASE)[1:17]]
    with pytest.raises(CacheDataError):
        decode_status(msgpack.packb(old, use_bin_type=True))


def test_compact() -> None:
    assert len(encode_status(BASE)) < 260
    assert len(encode_status(ENDORSED)) < 360


def test_integer_times_are_read_as_floats() -> None:
    fields = fields_of(BASE)
    fields[11:14] = [1767225600, 1735689600, "revoked"]
    decoded = decode_status(msgpack.packb(fields))
    assert decoded.expires_at == 1767225600.0 and type(decoded.expires_at) is float
    assert decoded.status is Status.REVOKED


def test_every_truncation_is_rejected() -> None:
    data = encode_status(BASE)
    for end in range(len(data)):
        with pytest.raises(CacheDataError):
            decode_status(data[:end])


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(CacheDataError):
        decode_status(encode_status(BASE) + b"\x00")


def _replaced(index: int, value: object) -> bytes:
    fields = fields_of(BASE)
    fields[index] = value
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, FORMAT_VERSION + 1),  # another format
        (0, 0),
        (0, True),  # bool is not the version int
        (0, "1"),
        (1, b"430900"),  # bytes where text belongs
        (1, None),
        (3, 7),
        (9, None),  # valid_from is required
        (10, 5),  # valid_until: str or None
        (11, "soon"),
        (12, None),  # issued_at is required
        (12, False),
        (13, "VALID"),  # status values are lower case
        (13, "unknown"),
        (13, 1),
        (14, [1.0]),
        (15, 3),
        (16, 1.0),  # version is an int
        (16, None),
        (17, 1),  # data_owner: str or None
        (18, b"unit"),  # extracting_unit: str or None
        (19, ["unit"]),  # verifying_unit: str or None
    ],
)
def test_wrong_field_types_are_rejected(index: int, value: object) -> None:
    with pytest.raises(CacheDataError):
        decode_status(_replaced(index, value))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        msgpack.packb(None),
        msgpack.packb(1),
        msgpack.packb("valid"),
        msgpack.packb([]),
        msgpack.packb([FORMAT_VERSION]),
        msgpack.packb(fields_of(BASE)[:-1]),
        msgpack.packb([*fields_of(BASE), 0]),
        msgpack.packb(dict(enumerate(fields_of(BASE)))),
        msgpack.packb([FORMAT_VERSION, *[[1]] * 19]),
        b"\xdd\xff\xff\xff\xff",  # array claiming 4 G elements
        b"\x91\xd9\x03\xff\xfe\xfd",  # invalid UTF-8 in a str
        msgpack.packb(fields_of(BASE)).replace(b"valid", b"vali\xff"),
    ],
)
def test_malformed_data_is_rejected(data: bytes) -> None:
    with pytest.raises(CacheDataError):
        decode_status(data)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_cache_data_error(data: bytes) -> None:
    try:
        decoded = decode_status(data)
    except CacheDataError:
        return
    assert isinstance(decoded, ProofStatus)


@given(statuses, st.data())
def test_single_byte_corruption_never_escapes_as_another_error(
    status: ProofStatus, data: st.DataObject
) -> None:
    encoded = bytearray(encode_status(status))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CacheDataError):  # anything else escaping fails the test
        decode_status(bytes(encoded))

"""The wire form of a cached :class:`~sealgate.verify.registry.ProofStatus`: one msgpack array.

Layout (positional, so no field names are repeated in every cached value)::

    [FORMAT_VERSION, code, seal_id, unit_name, unit_code, type, holder_kind,
     holder_name_masked, holder_id_masked, valid_from, valid_until, expires_at,
     issued_at, status, status_changed_at, superseded_by, version, data_owner,
     extracting_unit, verifying_unit]

``status`` travels as the :class:`~sealgate.verify.registry.Status` string value, so a reordering
of the enum never changes the meaning of stored bytes. Bump ``FORMAT_VERSION`` whenever
the layout changes: values of another version decode as :class:`CacheDataError`, which
callers treat as a miss, so a rolling deploy degrades to registry reads, never to wrong
answers. Format 1 lacked the last three fields: a copy of that format cannot say whether
its proof is endorsed, so it is a miss too, never a status without its endorsement.
"""

from __future__ import annotations

from typing import Any

import msgpack

from sealgate.errors import Error
from sealgate.verify.registry import ProofStatus, Status

FORMAT_VERSION = 2

# the version marker plus the 19 fields of ProofStatus (data_owner is shown from a copy;
# the rights it decides are read from the registry, never from a copy)
_FIELDS = 20

# Read-only lookup table: decoding by dict is several times cheaper than Status(value),
# which goes through the enum's metaclass and raises on failure.
_STATUS_BY_VALUE: dict[str, Status] = {member.value: member for member in Status}


class CacheDataError(Error, ValueError):
    """A cached value is not a well-formed status of the current format: treat as a miss."""


def status_fields(status: ProofStatus) -> tuple[Any, ...]:
    """The 19 fields of ``status`` in the layout above, the status as its string value.

    Strings and numbers only: the in-process tier keeps copies in this form, which the
    garbage collector does not track (see :mod:`sealgate.cache.local`)."""
    return (
        status.code,
        status.seal_id,
        status.unit_name,
        status.unit_code,
        status.type,
        status.holder_kind,
        status.holder_name_masked,
        status.holder_id_masked,
        status.valid_from,
        status.valid_until,
        status.expires_at,
        status.issued_at,
        status.status.value,
        status.status_changed_at,
        status.superseded_by,
        status.version,
        status.data_owner,
        status.extracting_unit,
        status.verifying_unit,
    )


def status_from_fields(fields: tuple[Any, ...]) -> ProofStatus:
    """:func:`status_fields` undone, unchecked: only for tuples this process made
    (bytes from elsewhere go through :func:`decode_status`)."""
    # Spelled out: slicing and star-arguments cost ~15 % more (3.2 vs 2.8 µs), and this
    # runs for every cold copy the in-process tier hands out.
    return ProofStatus(
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        fields[4],
        fields[5],
        fields[6],
        fields[7],
        fields[8],
        fields[9],
        fields[10],
        fields[11],
        _STATUS_BY_VALUE[fields[12]],
        fields[13],
        fields[14],
        fields[15],
        fields[16],
        fields[17],
        fields[18],
    )


def encode_status(status: ProofStatus) -> bytes:
    """The compact msgpack form of ``status``."""
    packed: bytes = msgpack.packb((FORMAT_VERSION, *status_fields(status)), use_bin_type=True)
    return packed


def decode_status(data: bytes) -> ProofStatus:
    """The status encoded in ``data``; :class:`CacheDataError` if it is not one."""
    try:
        # raw=False: strings must be valid UTF-8 (else UnicodeDecodeError, a ValueError).
        # use_list=False: tuples are cheaper and we never mutate. The max_*_len limits cap
        # what a corrupt length prefix can make the unpacker allocate.
        fields: Any = msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_bin_len=0,
            max_ext_len=0,
            max_array_len=_FIELDS,
            max_map_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # ExtraData, FormatError, StackError and OutOfData are ValueError subclasses;
        # UnpackException covers the rest of msgpack's own failures.
        raise CacheDataError(f"cached status is not valid msgpack: {type(exc).__name__}") from exc
    if type(fields) is not tuple or len(fields) != _FIELDS:
        raise CacheDataError("cached status is not an array of the expected length")
    (
        fmt,
        code,
        seal_id,
        unit_name,
        unit_code,
        proof_type,
        holder_kind,
        holder_name_masked,
        holder_id_masked,
        valid_from,
        valid_until,
        expires_at,
        issued_at,
        status_value,
        status_changed_at,
        superseded_by,
        version,
        data_owner,
        extracting_unit,
        verifying_unit,
    ) = fields
    if fmt != FORMAT_VERSION or type(fmt) is not int:
        raise CacheDataError(f"cached status has format {fmt!r}, expected {FORMAT_VERSION}")
    for text in (
        code,
        seal_id,
        unit_name,
        unit_code,
        proof_type,
        holder_kind,
        holder_name_masked,
        holder_id_masked,
        valid_from,
    ):
        if type(text) is not str:
            raise CacheDataError("cached status has a non-string text field")
    for optional_text in (valid_until, superseded_by, data_owner, extracting_unit, verifying_unit):
        if optional_text is not None and type(optional_text) is not str:
            raise CacheDataError("cached status has a bad optional text field")
    status = _STATUS_BY_VALUE.get(status_value) if type(status_value) is str else None
    if status is None:
        raise CacheDataError("cached status has an unknown status value")
    if type(version) is not int:
        raise CacheDataError("cached status has a non-integer version")
    return ProofStatus(
        code=code,
        seal_id=seal_id,
        unit_name=unit_name,
        unit_code=unit_code,
        type=proof_type,
        holder_kind=holder_kind,
        holder_name_masked=holder_name_masked,
        holder_id_masked=holder_id_masked,
        valid_from=valid_from,
        valid_until=valid_until,
        expires_at=None if expires_at is None else _number(expires_at),
        issued_at=_number(issued_at),
        status=status,
        status_changed_at=_number(status_changed_at),
        superseded_by=superseded_by,
        version=version,
        data_owner=data_owner,
        extracting_unit=extracting_unit,
        verifying_unit=verifying_unit,
    )


def _number(value: object) -> float:
    # msgpack keeps int and float apart; a writer may have held a whole-second time as an
    # int. bool is an int subclass and is rejected by the exact type test.
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise CacheDataError("cached status has a non-numeric time field")

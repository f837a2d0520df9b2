"""Tiny hand-written DER encoders for the hot sealing path.

Building asn1crypto object trees per proof costs tens of µs; concatenating
precomputed encodings costs a few. Only definite-length, minimal DER is produced.
"""

from __future__ import annotations

from datetime import UTC, datetime

from asn1crypto import core

from sealgate.crypto.errors import ContentError

_SHORT = [bytes((n,)) for n in range(0x80)]

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
UTF8_STRING = 0x0C
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


def length(n: int) -> bytes:
    """DER length octets: short form below 128, minimal long form above."""
    if n < 0x80:
        return _SHORT[n]
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element with a single-octet tag."""
    return header(tag, len(body)) + body


def header(tag: int, n: int) -> bytes:
    """The tag and length octets of an element whose contents are ``n`` octets."""
    if n < 0x80:
        return bytes((tag, n))
    if n < 0x100:
        return bytes((tag, 0x81, n))
    if n < 0x10000:
        return bytes((tag, 0x82, n >> 8, n & 0xFF))
    return bytes((tag,)) + length(n)


def oid(dotted: str) -> bytes:
    """The DER of an OBJECT IDENTIFIER; used at import time only."""
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


def utf8(value: str) -> bytes:
    """A DER UTF8String; lone surrogates are a :class:`ContentError`."""
    try:
        return tlv(UTF8_STRING, value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ContentError(f"not encodable as UTF-8: {value!r}") from exc


def as_utc(when: datetime) -> datetime:
    """``when`` in UTC, whole seconds; naive datetimes are refused, not guessed."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ContentError("datetime must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0)


def _utc_fields(when: datetime) -> datetime:
    """Shift the wall-clock fields to UTC (cheaper than astimezone on the hot path)."""
    offset = when.utcoffset()
    if offset is None:
        raise ContentError("datetime must be timezone-aware")
    if offset:
        try:
            return when - offset
        except OverflowError as exc:
            raise ContentError("datetime out of range in UTC") from exc
    return when


def generalized_time(when: datetime) -> bytes:
    """DER GeneralizedTime ``YYYYMMDDHHMMSSZ``; seconds precision, fraction dropped."""
    return _generalized(_utc_fields(when))


def _generalized(t: datetime) -> bytes:
    text = b"%04d%02d%02d%02d%02d%02dZ" % (t.year, t.month, t.day, t.hour, t.minute, t.second)
    return bytes((GENERALIZED_TIME, 15)) + text


def time(when: datetime) -> bytes:
    """UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5, RFC 5652 §11.3)."""
    t = _utc_fields(when)
    if 1950 <= t.year <= 2049:
        text = b"%02d%02d%02d%02d%02d%02dZ" % (
            t.year % 100,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
        )
        return bytes((UTC_TIME, 13)) + text
    return _generalized(t)


MAX_DEPTH = 64


def check_der_lengths(data: bytes) -> None:
    """Raise ValueError unless every TLV in ``data`` has a definite, minimal length and the
    nesting is at most :data:`MAX_DEPTH` deep.

    BER allows other encodings of the same value (indefinite or padded lengths); a sealed
    proof must have exactly one byte form, so it is refused before any parsing.
    """
    stack = [(0, len(data))]  # (start, end) of the constructed contents still to walk
    while stack:
        position, end = stack.pop()
        while position < end:
            if len(stack) >= MAX_DEPTH:
                raise ValueError("nested too deeply")
            tag = data[position]
            position += 1
            if tag & 0x1F == 0x1F:  # high tag number form
                while position < end and data[position] & 0x80:
                    position += 1
                position += 1
            if position >= end:
                raise ValueError("truncated TLV")
            first = data[position]
            position += 1
            if first < 0x80:
                length = first
            elif first == 0x80:
                raise ValueError("indefinite length")
            else:
                size = first & 0x7F
                if size > 4 or position + size > end:
                    raise ValueError("length too long")
                length = int.from_bytes(data[position : position + size], "big")
                position += size
                if length < 0x80 or data[position - size] == 0:
                    raise ValueError("length not minimal")
            if position + length > end:
                raise ValueError("length beyond its container")
            if tag & 0x20:  # constructed: walk its contents after this level
                stack.append((position + length, end))
                stack.append((position, position + length))
                break
            position += length

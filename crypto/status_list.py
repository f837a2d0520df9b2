"""The Token Status List (draft-ietf-oauth-status-list), CWT form, 2 bits a proof.

Each proof a QR payload names has an index in a list; the list is a byte array of 2-bit
entries (entry ``i`` in byte ``i // 4`` at bit ``2 * (i % 4)``, least significant first),
ZLIB-compressed, in a CWT signed as a COSE_Sign1 (typ ``application/statuslist+cwt``)::

    {2 sub: uri, 6 iat, 4 exp, 65534 ttl, 65533 status_list: {"bits": 2, "lst": bytes}}

The values (the draft's three, and its application-specific fourth):
``0`` valid, ``1`` revoked-or-ended (INVALID: revoked, cancelled, abolished),
``2`` pledged (SUSPENDED: 质押, may come back), ``3`` changed (superseded by a newer proof).
Expiry is not in the list: the payload carries ``valid_until`` and the verifier derives it.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2

from sealgate.crypto.cose import PendingSign1, open_sign1, prepare_sign1
from sealgate.crypto.errors import Expired, MalformedQr
from sealgate.crypto.key_trust import KeyTrust, Use

TYP = "application/statuslist+cwt"
BITS = 2
SUB, EXP, IAT = 2, 4, 6
TTL = 65534
STATUS_LIST = 65533
MAX_INFLATED = 64 * 1024 * 1024  # 2 bits × 256 M proofs


class ListStatus(enum.IntEnum):
    VALID = 0
    REVOKED_OR_ENDED = 1
    PLEDGED = 2
    CHANGED = 3


def compress(entries: bytes) -> bytes:
    """ZLIB at level 6: for a million proofs 45 KB in ~45 ms; level 9 saves a tenth of
    the bytes for twelve times the time (measured, benchmarks/test_status_list_bench.py)."""
    return zlib.compress(entries, 6)


class StatusBits:
    """A growable array of 2-bit statuses."""

    def __init__(self, data: bytes | bytearray = b"") -> None:
        self._data = bytearray(data)

    def __len__(self) -> int:
        return len(self._data) * 8 // BITS

    def set(self, index: int, status: ListStatus) -> bool:
        """Set entry ``index``; True if that changed the list."""
        byte, shift = divmod(index * BITS, 8)
        if byte >= len(self._data):
            if status is ListStatus.VALID:
                return False  # past the end reads as valid already
            self._data.extend(bytes(byte + 1 - len(self._data)))
        old = self._data[byte]
        new = (old & ~(0b11 << shift)) | (int(status) << shift)
        self._data[byte] = new
        return new != old

    def get(self, index: int) -> ListStatus:
        byte, shift = divmod(index * BITS, 8)
        if byte >= len(self._data):
            raise MalformedQr("the index is past the end of the status list")
        return ListStatus((self._data[byte] >> shift) & 0b11)

    def snapshot(self) -> bytes:
        return bytes(self._data)

    def compressed(self) -> bytes:
        return compress(self.snapshot())

    @classmethod
    def decompressed(cls, lst: bytes) -> StatusBits:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(lst, MAX_INFLATED)
        except zlib.error:
            raise MalformedQr("the status list is not zlib data") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise MalformedQr("the status list is too large or cut short")
        return cls(data)


def prepare_status_list(
    kid: bytes, uri: str, compressed: bytes, *, issued_at: int, ttl: int, expires_at: int
) -> PendingSign1:
    claims: dict[int, Any] = {
        SUB: uri,
        IAT: issued_at,
        EXP: expires_at,
        TTL: ttl,
        STATUS_LIST: {"bits": BITS, "lst": compressed},
    }
    return prepare_sign1(kid, cbor2.dumps(claims), typ=TYP)


@dataclass(frozen=True, slots=True)
class StatusList:
    uri: str
    issued_at: int
    expires_at: int
    ttl: int
    bits: StatusBits

    def status(self, index: int) -> ListStatus:
        return self.bits.get(index)


def read_status_list(token: bytes, trust: KeyTrust, *, uri: str, now: float) -> StatusList:
    """A status list token signed by a key ``trust`` holds for status lists, for ``uri``
    (a list for another URI cannot stand in), not expired at ``now``."""
    opened = open_sign1(token, trust, Use.STATUS_LIST)
    if opened.typ != TYP:
        raise MalformedQr(f"not a status list (typ {TYP})")
    try:
        claims = cbor2.loads(opened.payload)
        body = claims[STATUS_LIST]
        result = StatusList(
            uri=claims[SUB],
            issued_at=claims[IAT],
            expires_at=claims[EXP],
            ttl=claims[TTL],
            bits=StatusBits.decompressed(body["lst"]),
        )
        width = body["bits"]
    except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedQr(f"not a status list: {type(exc).__name__}") from None
    if width != BITS:
        raise MalformedQr(f"a status list of {width} bits, not {BITS}")
    if result.uri != uri:
        raise MalformedQr("the status list is not the one the payload names")
    if now >= result.expires_at:
        raise Expired("the status list has expired: fetch it again")
    return result

"""The 亮码 payload: a proof's facts for a QR code a phone shows and a counter scans.

As the EU Digital COVID Certificate: a CWT claim set (RFC 8392) in a COSE_Sign1 (RFC 9052),
zlib-compressed, Base45-encoded (RFC 9285) behind a short prefix, so the whole is a QR
code's alphanumeric mode::

    SG1:<Base45(zlib(COSE_Sign1))>

    claims = {1 iss: region, 6 iat, 4 exp?,
              65535 status: {"status_list": {"idx": n, "uri": list}},   Token Status List
              -75001 proof: [code, type, unit_name, unit_code, valid_from, valid_until,
                             holder_kind, holder_name_masked, holder_digest]}

No certificate travels, only the signing key's id (the trust list names the key). The
holder appears masked, with a slow keyed hash of the full identity number keyed by the
proof's code (:func:`holder_digest`), so a counter that reads the ID card can match it
while the payload does not give the number away to a guess over birth dates.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from dataclasses import dataclass
from typing import Any

import cbor2

from sealgate.crypto.base45 import b45decode, b45encode
from sealgate.crypto.cose import PendingSign1, open_sign1, prepare_sign1
from sealgate.crypto.errors import Expired, HolderMismatch, MalformedQr
from sealgate.crypto.key_trust import KeyTrust, Use

PREFIX = "SG1:"
MAX_PAYLOAD = 2048  # characters: QR version 40-L holds 4,296; ours are ~500
MAX_INFLATED = 4096  # bytes: a zlib bomb stops here
HOLDER_ITERATIONS = 100_000  # ~20 ms a match: cheap for a counter, dear for a guesser
HOLDER_DIGEST_BYTES = 16

ISS, EXP, IAT = 1, 4, 6
STATUS = 65535  # draft-ietf-oauth-status-list: the referenced token's status claim
PROOF = -75001  # private claim: the proof's facts


def holder_digest(code: str, holder_id: str) -> bytes:
    """The payload's keyed hash of a holder's full identity number, keyed by the code."""
    salt = b"sealgate/qr-holder/v1|" + code.encode()
    password = holder_id.strip().upper().encode()
    return hashlib.pbkdf2_hmac("sha256", password, salt, HOLDER_ITERATIONS)[:HOLDER_DIGEST_BYTES]


@dataclass(frozen=True, slots=True)
class QrClaims:
    issuer: str  # the city's region code
    code: str  # compact
    type: str
    unit_name: str
    unit_code: str
    valid_from: str
    valid_until: str | None
    holder_kind: str
    holder_name_masked: str
    holder_digest: bytes
    status_list: str  # the status list's URI (or path under the gateway)
    status_index: int
    issued_at: int
    expires_at: int | None  # the payload's own end (the dynamic variant's 60-120 s)

    def to_cbor(self) -> bytes:
        claims: dict[int, Any] = {
            ISS: self.issuer,
            IAT: self.issued_at,
            STATUS: {"status_list": {"idx": self.status_index, "uri": self.status_list}},
            PROOF: [
                self.code,
                self.type,
                self.unit_name,
                self.unit_code,
                self.valid_from,
                self.valid_until,
                self.holder_kind,
                self.holder_name_masked,
                self.holder_digest,
            ],
        }
        if self.expires_at is not None:
            claims[EXP] = self.expires_at
        return cbor2.dumps(claims)

    @classmethod
    def from_cbor(cls, payload: bytes) -> QrClaims:
        try:
            claims = cbor2.loads(payload)
            status = claims[STATUS]["status_list"]
            proof = claims[PROOF]
            (code, type_, unit_name, unit_code, valid_from, valid_until) = proof[:6]
            holder_kind, name, digest = proof[6:]
            result = cls(
                issuer=claims[ISS],
                code=code,
                type=type_,
                unit_name=unit_name,
                unit_code=unit_code,
                valid_from=valid_from,
                valid_until=valid_until,
                holder_kind=holder_kind,
                holder_name_masked=name,
                holder_digest=digest,
                status_list=status["uri"],
                status_index=status["idx"],
                issued_at=claims[IAT],
                expires_at=claims.get(EXP),
            )
        except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise MalformedQr(f"the claims are not a proof's: {type(exc).__name__}") from None
        texts = (code, type_, unit_name, unit_code, valid_from, holder_kind, name, status["uri"])
        if not all(isinstance(t, str) for t in (*texts, claims[ISS])):
            raise MalformedQr("the claims are not a proof's: a field is not text")
        if not (valid_until is None or isinstance(valid_until, str)):
            raise MalformedQr("the claims are not a proof's: valid_until is not text")
        if not isinstance(digest, bytes) or len(digest) != HOLDER_DIGEST_BYTES:
            raise MalformedQr("the claims are not a proof's: the holder digest")
        numbers = (result.status_index, result.issued_at)
        if not all(type(n) is int and n >= 0 for n in numbers):
            raise MalformedQr("the claims are not a proof's: idx or iat")
        if result.expires_at is not None and type(result.expires_at) is not int:
            raise MalformedQr("the claims are not a proof's: exp")
        return result

    def require_holder(self, holder_id: str) -> None:
        """Raise :class:`HolderMismatch` unless ``holder_id`` is the holder's."""
        if not hmac.compare_digest(holder_digest(self.code, holder_id), self.holder_digest):
            raise HolderMismatch("the identity number is not this proof's holder's")


def prepare_payload(claims: QrClaims, kid: bytes) -> PendingSign1:
    """The COSE_Sign1 to sign; :func:`encode_payload` of its finished bytes is the QR text."""
    return prepare_sign1(kid, claims.to_cbor())


def encode_payload(cose: bytes) -> str:
    return PREFIX + b45encode(zlib.compress(cose, 9))


def read_payload(text: str, trust: KeyTrust, *, now: float) -> QrClaims:
    """The claims of a QR payload signed by a key ``trust`` holds for QR payloads and not
    past its expiry at ``now``. Every failure is a :class:`sealgate.crypto.errors.CoseError`.

    Whether the proof is still valid is the status list's answer, not this function's.
    """
    text = text.strip()
    if len(text) > MAX_PAYLOAD:
        raise MalformedQr("longer than any payload we issue")
    if not text.startswith(PREFIX):
        raise MalformedQr(f"not a sealgate payload (it starts with {PREFIX})")
    compressed = b45decode(text[len(PREFIX) :])
    inflater = zlib.decompressobj()
    try:
        cose = inflater.decompress(compressed, MAX_INFLATED)
    except zlib.error:
        raise MalformedQr("not zlib data") from None
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise MalformedQr("not one whole zlib stream of a payload's size")
    opened = open_sign1(cose, trust, Use.QR)
    claims = QrClaims.from_cbor(opened.payload)
    if claims.expires_at is not None and now >= claims.expires_at:
        raise Expired("this QR code has expired: ask the holder to refresh it")
    return claims

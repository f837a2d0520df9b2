"""The audit trail's chain: records hashed in sequence, with signed checkpoints.

Pure and I/O-free; :mod:`sealgate.gateway.audit` stores the records and signs the checkpoints
with a key in the token. Each record's hash covers the previous record's hash, so a
deleted, altered, reordered or inserted record breaks the chain at that point. A
checkpoint is itself a record: a signature by the audit key over the sequence number and
hash of the record before it. The newest checkpoint is also kept outside the trail (the
signed head), so cutting records off the end is detected too: the trail must reach the
head.

Exceptions::

    AuditError
    └── TrailBroken     the first bad record: its ``seq`` and what is wrong with it
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from sealgate.errors import Error

GENESIS = b"\x00" * 32
CHECKPOINT = "checkpoint"
_RECORD_DOMAIN = b"sealgate/audit/record/v1|"
_CHECKPOINT_DOMAIN = b"sealgate/audit/checkpoint/v1|"


class AuditError(Error):
    """Base of the audit trail's errors."""


class TrailBroken(AuditError):
    """The trail fails verification at ``seq``."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"record {seq}: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened: never a holder's identity number (a keyed hash at most)."""

    action: str  # seal, status, verify, verify-document, document, proofs, rotate, checkpoint
    client_id: str
    role: str
    purpose: str | None
    code: str | None
    result: str  # the HTTP status, or the outcome of a CLI action
    request_id: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)

    def payload(self, seq: int) -> dict[str, Any]:
        return {
            "seq": seq,
            "action": self.action,
            "client": self.client_id,
            "role": self.role,
            "purpose": self.purpose,
            "code": self.code,
            "result": self.result,
            "request": self.request_id,
            # milliseconds as an integer: exact in canonical JSON, enough for an audit
            "at_ms": round(self.at * 1000),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    event: AuditEvent
    prev_hash: bytes
    hash: bytes


def _encode(payload: dict[str, Any]) -> bytes:
    # Deterministic for the payload's types (str, int, None, and dicts of them): sorted
    # keys, no spaces, UTF-8. json's C encoder, not a general RFC 8785 canonicaliser,
    # because every verification writes a record.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(prev_hash: bytes, seq: int, event: AuditEvent) -> bytes:
    return hashlib.sha256(_RECORD_DOMAIN + prev_hash + _encode(event.payload(seq))).digest()


def chain_fields(
    prev_hash: bytes, first_seq: int, events: Iterable[Sequence[Any]]
) -> Iterator[tuple[int, bytes, bytes, Sequence[Any]]]:
    """:func:`chain` for events given as their fields in :class:`AuditEvent` order, with no
    objects built: ``(seq, prev_hash, hash, fields)`` for each. The audit writer chains
    every verification's record, so this is its hot path; the hashes are :func:`chain`'s.
    """
    seq = first_seq
    for fields in events:
        action, client_id, role, purpose, code, result, request_id, at, detail = fields
        encoded = _record_json(
            seq,
            action,
            client_id,
            role,
            purpose,
            code,
            result,
            request_id,
            round(at * 1000),
            detail,
        )
        digest = hashlib.sha256(_RECORD_DOMAIN + prev_hash + encoded).digest()
        yield seq, prev_hash, digest, fields
        prev_hash = digest
        seq += 1


# What json.dumps(ensure_ascii=False) writes for one string (its C encoder, if built).
_string = json.encoder.encode_basestring


def _record_json(
    seq: int,
    action: Any,
    client_id: Any,
    role: Any,
    purpose: Any,
    code: Any,
    result: Any,
    request_id: Any,
    at_ms: int,
    detail: Any,
) -> bytes:
    """``_encode(event.payload(seq))``, written out for the usual types. Building a dict
    and sorting its keys for every record was most of the audit writer's chaining time;
    anything unusual (a str subclass, a number where a string belongs) takes the general
    path, so the bytes are :func:`_encode`'s for every input."""
    if (
        type(action) is str
        and type(client_id) is str
        and type(role) is str
        and (purpose is None or type(purpose) is str)
        and (code is None or type(code) is str)
        and type(result) is str
        and type(request_id) is str
        and type(seq) is int
        and type(at_ms) is int
        and type(detail) is dict
    ):
        # Keys in sorted order, as sort_keys=True writes them.
        return (
            f'{{"action":{_string(action)},"at_ms":{at_ms},"client":{_string(client_id)},'
            f'"code":{"null" if code is None else _string(code)},'
            f'"detail":{_encode(detail).decode() if detail else "{}"},'
            f'"purpose":{"null" if purpose is None else _string(purpose)},'
            f'"request":{_string(request_id)},"result":{_string(result)},'
            f'"role":{_string(role)},"seq":{seq}}}'
        ).encode()
    return _encode(
        {
            "action": action,
            "at_ms": at_ms,
            "client": client_id,
            "code": code,
            "detail": detail,
            "purpose": purpose,
            "request": request_id,
            "result": result,
            "role": role,
            "seq": seq,
        }
    )


def chain(prev_hash: bytes, first_seq: int, events: Iterable[AuditEvent]) -> list[AuditRecord]:
    """Records for ``events``, following the record ``(first_seq - 1, prev_hash)``."""
    records = []
    for offset, event in enumerate(events):
        seq = first_seq + offset
        digest = record_hash(prev_hash, seq, event)
        records.append(AuditRecord(seq, event, prev_hash, digest))
        prev_hash = digest
    return records


def checkpoint_digest(seq: int, head_hash: bytes) -> bytes:
    """What the audit key signs: the position and hash of the record it vouches for."""
    return hashlib.sha256(_CHECKPOINT_DOMAIN + str(seq).encode() + b"|" + head_hash).digest()


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A checkpoint as kept outside the trail: ``seq`` and ``hash`` of a record, signed."""

    seq: int
    hash: bytes
    signature: bytes
    key_label: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "seq": self.seq,
                "hash": self.hash.hex(),
                "signature": base64.b64encode(self.signature).decode(),
                "key": self.key_label,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SignedHead:
        try:
            obj = json.loads(data)
            return cls(
                int(obj["seq"]),
                bytes.fromhex(obj["hash"]),
                base64.b64decode(obj["signature"], validate=True),
                str(obj["key"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError("the signed head is malformed") from exc

    def checkpoint_event(self, at: float, request_id: str = "") -> AuditEvent:
        return AuditEvent(
            action=CHECKPOINT,
            client_id="sealgate",
            role="system",
            purpose=None,
            code=None,
            result="signed",
            request_id=request_id,
            at=at,
            detail={
                "head_seq": self.seq,
                "head_hash": self.hash.hex(),
                "signature": base64.b64encode(self.signature).decode(),
                "key": self.key_label,
            },
        )


def _verify_signature(public_key_der: bytes, digest: bytes, signature: bytes) -> bool:
    key = serialization.load_der_public_key(public_key_der)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TrailSummary:
    records: int
    checkpoints: int
    last_seq: int
    last_checkpoint_seq: int | None
    # The newest record a valid signature vouches for (a checkpoint's or the signed
    # head's), 0 if none: everything after it could be rewritten without trace.
    covered_seq: int = 0
    # Records after covered_seq, checkpoints apart (a checkpoint carries its own
    # signature), and the time of the oldest of them (Unix seconds).
    unsigned: int = 0
    oldest_unsigned_at: float | None = None


def verify_trail(
    records: Iterable[AuditRecord], public_key_der: bytes, head: SignedHead | None = None
) -> TrailSummary:
    """Check the whole trail in order; raise :class:`TrailBroken` at the first bad record.

    ``records`` must come in storage order (by ``seq``). ``head`` is the signed head kept
    outside the trail; without it, cutting records off the end cannot be detected.
    """
    expected_seq = 1
    prev_hash = GENESIS
    hashes_by_seq: dict[int, bytes] = {}
    checkpoints = 0
    last_checkpoint: int | None = None
    covered = 0
    # (seq, at) of the records no signature covers so far, oldest first; a checkpoint
    # takes those it vouches for off the front. Short unless signing has stopped.
    unsigned: collections.deque[tuple[int, float]] = collections.deque()
    for record in records:
        if record.seq != expected_seq:
            raise TrailBroken(expected_seq, f"missing: the next record stored is {record.seq}")
        if record.prev_hash != prev_hash:
            raise TrailBroken(record.seq, "does not follow the record before it")
        if record_hash(prev_hash, record.seq, record.event) != record.hash:
            raise TrailBroken(record.seq, "altered: its content does not match its hash")
        if record.event.action == CHECKPOINT:
            covered = max(covered, _check_checkpoint(record, public_key_der, hashes_by_seq))
            _drop_covered(unsigned, covered)
            checkpoints += 1
            last_checkpoint = record.seq
        else:
            unsigned.append((record.seq, record.event.at))
        hashes_by_seq[record.seq] = record.hash
        prev_hash = record.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head is not None:
        if not _verify_signature(
            public_key_der, checkpoint_digest(head.seq, head.hash), head.signature
        ):
            raise TrailBroken(head.seq, "the signed head's signature is not the audit key's")
        if head.seq > last_seq:
            raise TrailBroken(
                last_seq + 1,
                f"truncated: the trail ends at {last_seq}, "
                f"the signed head vouches for record {head.seq}",
            )
        if hashes_by_seq.get(head.seq) != head.hash:
            raise TrailBroken(head.seq, "differs from the record the signed head vouches for")
        covered = max(covered, head.seq)
        _drop_covered(unsigned, covered)
    return TrailSummary(
        expected_seq - 1,
        checkpoints,
        last_seq,
        last_checkpoint,
        covered_seq=covered,
        unsigned=len(unsigned),
        oldest_unsigned_at=unsigned[0][1] if unsigned else None,
    )


def _drop_covered(unsigned: collections.deque[tuple[int, float]], covered: int) -> None:
    while unsigned and unsigned[0][0] <= covered:
        unsigned.popleft()


def _check_checkpoint(
    record: AuditRecord, public_key_der: bytes, hashes_by_seq: dict[int, bytes]
) -> int:
    """Raise :class:`TrailBroken` unless the checkpoint is valid; the seq it vouches for."""
    detail = record.event.detail
    try:
        seq = int(detail["head_seq"])
        head_hash = bytes.fromhex(detail["head_hash"])
        signature = base64.b64decode(detail["signature"], validate=True)
    except (KeyError, ValueError, TypeError):
        raise TrailBroken(record.seq, "a malformed checkpoint") from None
    if hashes_by_seq.get(seq, GENESIS if seq == 0 else None) != head_hash:
        raise TrailBroken(record.seq, f"a checkpoint for a record {seq} that is not in the trail")
    if not _verify_signature(public_key_der, checkpoint_digest(seq, head_hash), signature):
        raise TrailBroken(record.seq, "a checkpoint not signed by the audit key")
    return seq

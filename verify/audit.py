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
_HEAD_DOMAIN = b"sealgate/audit/head/v2|"
HEAD_VERSION = 2


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
    # The detail exactly as stored, for a record read back: verification hashes these
    # bytes, never a re-serialisation of what a JSON parser made of them (a duplicated
    # key would let the hash cover one value while SQL's json_extract reads the other).
    # ``None`` for a record made here: :func:`detail_json` of its detail.
    stored_detail: str | None = None


def _encode(payload: dict[str, Any]) -> bytes:
    # Deterministic for the payload's types (str, int, None, and dicts of them): sorted
    # keys, no spaces, UTF-8. json's C encoder, not a general RFC 8785 canonicaliser,
    # because every verification writes a record.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def detail_json(detail: dict[str, Any]) -> str:
    """The detail as it is hashed, and stored: these exact characters."""
    return _encode(detail).decode() if detail else "{}"


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey("a duplicated key")
    return obj


def parse_detail(text: str) -> dict[str, Any]:
    """A stored detail read back; :class:`AuditError` unless it is a JSON object with no
    key twice, written exactly as :func:`detail_json` writes it (so what any reader, a
    SQL ``json_extract`` included, makes of it is what the hash covers)."""
    try:
        detail = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey:
        raise AuditError("its detail holds a key twice") from None
    except ValueError:
        raise AuditError("its detail is not JSON") from None
    if not isinstance(detail, dict):
        raise AuditError("its detail is not a JSON object")
    if detail_json(detail) != text:
        raise AuditError("its detail is not written in the trail's one form")
    return detail


def record_hash(prev_hash: bytes, seq: int, event: AuditEvent, detail: str | None = None) -> bytes:
    """The record's hash; ``detail``: its detail's stored text (default: as written)."""
    text = detail_json(event.detail) if detail is None else detail
    encoded = _record_json(
        seq,
        event.action,
        event.client_id,
        event.role,
        event.purpose,
        event.code,
        event.result,
        event.request_id,
        round(event.at * 1000),
        text,
    )
    return hashlib.sha256(_RECORD_DOMAIN + prev_hash + encoded).digest()


def chain_fields(
    prev_hash: bytes, first_seq: int, events: Iterable[Sequence[Any]]
) -> Iterator[tuple[int, bytes, bytes, Sequence[Any], str]]:
    """:func:`chain` for events given as their fields in :class:`AuditEvent` order, with no
    objects built: ``(seq, prev_hash, hash, fields, detail)`` for each, ``detail`` the
    exact text hashed (to be stored as it is). The audit writer chains every
    verification's record, so this is its hot path; the hashes are :func:`chain`'s.
    """
    seq = first_seq
    for fields in events:
        action, client_id, role, purpose, code, result, request_id, at, detail = fields
        text = detail_json(detail)
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
            text,
        )
        digest = hashlib.sha256(_RECORD_DOMAIN + prev_hash + encoded).digest()
        yield seq, prev_hash, digest, fields, text
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
    at_ms: Any,
    detail: str,
) -> bytes:
    """The record as hashed: ``_encode(event.payload(seq))`` with the detail's text
    (``detail``) spliced in as it is. Written out in sorted key order, as sort_keys=True
    writes them: building a dict and sorting its keys for every record was most of the
    audit writer's chaining time. The usual types take the first way; anything else (a
    str subclass, a number where a string belongs) goes through ``_encode`` value by
    value, which writes each as it would inside the dict."""
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
    ):
        return (
            f'{{"action":{_string(action)},"at_ms":{at_ms},"client":{_string(client_id)},'
            f'"code":{"null" if code is None else _string(code)},"detail":{detail},'
            f'"purpose":{"null" if purpose is None else _string(purpose)},'
            f'"request":{_string(request_id)},"result":{_string(result)},'
            f'"role":{_string(role)},"seq":{seq}}}'
        ).encode()
    return (
        f'{{"action":{_value(action)},"at_ms":{_value(at_ms)},"client":{_value(client_id)},'
        f'"code":{_value(code)},"detail":{detail},"purpose":{_value(purpose)},'
        f'"request":{_value(request_id)},"result":{_value(result)},'
        f'"role":{_value(role)},"seq":{_value(seq)}}}'
    ).encode()


def _value(value: Any) -> str:
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    return _encode(value).decode()


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
    """What the audit key signs in a checkpoint: the position and hash of the record it
    vouches for."""
    return hashlib.sha256(_CHECKPOINT_DOMAIN + str(seq).encode() + b"|" + head_hash).digest()


def head_digest(seq: int, head_hash: bytes) -> bytes:
    """What the audit key signs for the head kept outside the trail: the same record, in
    a domain of its own, so that no head can be made from a checkpoint's fields (cutting
    the trail back to an old checkpoint then leaves no head that fits it)."""
    return hashlib.sha256(_HEAD_DOMAIN + str(seq).encode() + b"|" + head_hash).digest()


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The newest checkpoint as kept outside the trail: ``seq`` and ``hash`` of a record,
    signed over :func:`head_digest` (never found in the trail itself)."""

    seq: int
    hash: bytes
    signature: bytes
    key_label: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "v": HEAD_VERSION,
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
            version = obj.get("v")
            head = cls(
                int(obj["seq"]),
                bytes.fromhex(obj["hash"]),
                base64.b64decode(obj["signature"], validate=True),
                str(obj["key"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuditError("the signed head is malformed") from exc
        if version != HEAD_VERSION:
            raise AuditError(
                "the signed head is of the old form, which anyone can rebuild from a"
                " checkpoint in the trail; a gateway writes the new form at its next"
                " checkpoint"
            )
        return head


def checkpoint_event(
    seq: int, head_hash: bytes, signature: bytes, key_label: str, at: float, request_id: str = ""
) -> AuditEvent:
    """The checkpoint's record: ``signature`` over :func:`checkpoint_digest`."""
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
            "head_seq": seq,
            "head_hash": head_hash.hex(),
            "signature": base64.b64encode(signature).decode(),
            "key": key_label,
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
    records: Iterable[AuditRecord],
    public_key_der: bytes,
    head: SignedHead | None = None,
    pushed: Sequence[SignedHead] = (),
) -> TrailSummary:
    """Check the whole trail in order; raise :class:`TrailBroken` at the first bad record.

    ``records`` must come in storage order (by ``seq``). ``head`` is the signed head kept
    outside the trail; without it, cutting records off the end cannot be detected.
    ``pushed``: the heads this trail pushed to its append-only sink, each of which the
    trail must still hold (a trail cut back, or rewritten, with the head beside it to
    match, no longer holds them).
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
        if record_hash(prev_hash, record.seq, record.event, record.stored_detail) != record.hash:
            raise TrailBroken(record.seq, "altered: its content does not match its hash")
        if record.stored_detail is not None:
            try:
                parse_detail(record.stored_detail)
            except AuditError as exc:
                raise TrailBroken(record.seq, str(exc)) from None
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
    for where, signed in [("the signed head", head), *(("a head in the sink", p) for p in pushed)]:
        if signed is None:
            continue
        if not _verify_signature(
            public_key_der, head_digest(signed.seq, signed.hash), signed.signature
        ):
            raise TrailBroken(signed.seq, f"{where}: its signature is not the audit key's")
        if signed.seq > last_seq:
            raise TrailBroken(
                last_seq + 1,
                f"truncated: the trail ends at {last_seq}, {where} vouches for record {signed.seq}",
            )
        if hashes_by_seq.get(signed.seq) != signed.hash:
            raise TrailBroken(signed.seq, f"differs from the record {where} vouches for")
        covered = max(covered, signed.seq)
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

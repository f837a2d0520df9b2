"""The audit chain: intact trails verify; each kind of tampering names the first bad record."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from sealgate.verify.audit import (
    GENESIS,
    AuditError,
    AuditEvent,
    AuditRecord,
    SignedHead,
    TrailBroken,
    chain,
    chain_fields,
    checkpoint_digest,
    checkpoint_event,
    detail_json,
    head_digest,
    parse_detail,
    record_hash,
    verify_trail,
)

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


def event(n: int) -> AuditEvent:
    return AuditEvent(
        "verify",
        f"C-{n % 3}",
        "verifier",
        "demo",
        f"CODE{n}",
        "200",
        f"r{n}",
        1_700_000_000 + n,
        {"n": n},
    )


def _signed(digest: bytes, key: ec.EllipticCurvePrivateKey = KEY) -> bytes:
    return key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def sign(seq: int, digest: bytes) -> SignedHead:
    return SignedHead(seq, digest, _signed(head_digest(seq, digest)), "audit-test")


def checkpoint(seq: int, digest: bytes) -> AuditEvent:
    signature = _signed(checkpoint_digest(seq, digest))
    return checkpoint_event(seq, digest, signature, "audit-test", 1.0)


def trail(
    n: int = 30, checkpoint_after: tuple[int, ...] = (10, 20)
) -> tuple[list[AuditRecord], SignedHead]:
    records: list[AuditRecord] = []
    head = None
    for i in range(1, n + 1):
        prev = records[-1].hash if records else GENESIS
        records += chain(prev, len(records) + 1, [event(i)])
        if i in checkpoint_after:
            head = sign(records[-1].seq, records[-1].hash)
            cp = checkpoint(records[-1].seq, records[-1].hash)
            records += chain(records[-1].hash, len(records) + 1, [cp])
    assert head is not None
    return records, head


def test_records_no_signature_covers_are_the_unsigned_tail() -> None:
    # seq 1-10 events 1-10, 11 a checkpoint of 10, 12-21 events 11-20, 22 a checkpoint
    # of 21, 23-32 events 21-30: the last ten are vouched for by no signature
    records, head = trail()
    summary = verify_trail(records, PUBLIC, head)
    assert (summary.covered_seq, summary.unsigned) == (21, 10)
    assert summary.oldest_unsigned_at == event(21).at
    assert verify_trail(records, PUBLIC, None).unsigned == 10  # the checkpoints say as much
    # a signed head over the last record covers it all
    whole = verify_trail(records, PUBLIC, sign(records[-1].seq, records[-1].hash))
    assert (whole.covered_seq, whole.unsigned, whole.oldest_unsigned_at) == (32, 0, None)
    # a checkpoint record carries its own signature: a trail ending in one has no tail
    assert verify_trail(records[:22], PUBLIC, head).unsigned == 0
    # never signed: every record
    bare = verify_trail(chain(GENESIS, 1, [event(n) for n in range(1, 6)]), PUBLIC)
    assert (bare.covered_seq, bare.unsigned, bare.oldest_unsigned_at) == (0, 5, event(1).at)


def test_an_intact_trail_verifies() -> None:
    records, head = trail()
    summary = verify_trail(records, PUBLIC, head)
    assert (summary.records, summary.checkpoints) == (32, 2)


def altered(records: list[AuditRecord], seq: int, **changes: object) -> list[AuditRecord]:
    out = list(records)
    record = out[seq - 1]
    out[seq - 1] = dataclasses.replace(record, event=dataclasses.replace(record.event, **changes))
    return out


TAMPERINGS: dict[str, tuple[Callable[[list[AuditRecord]], list[AuditRecord]], int]] = {
    "deleted": (lambda r: r[:6] + r[7:], 7),
    "altered result": (lambda r: altered(r, 5, result="404"), 5),
    "altered detail": (lambda r: altered(r, 9, detail={"n": 99}), 9),
    "truncated field": (lambda r: altered(r, 4, code="CODE"), 4),
    "reordered": (lambda r: [*r[:14], r[15], r[14], *r[16:]], 15),
    "rehashed to hide a change": (
        lambda r: (
            r[:3] + chain(r[2].hash, 4, [dataclasses.replace(r[3].event, result="500")]) + r[4:]
        ),
        5,
    ),
    "forged checkpoint": (
        lambda r: altered(r, 11, detail={**r[10].event.detail, "signature": "AAAA"}),
        11,
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampering_names_the_first_bad_record(name: str) -> None:
    records, head = trail()
    tamper, first_bad = TAMPERINGS[name]
    with pytest.raises(TrailBroken) as caught:
        verify_trail(tamper(records), PUBLIC, head)
    assert caught.value.seq == first_bad, str(caught.value)


def test_a_cut_off_end_is_caught_by_the_signed_head() -> None:
    records, head = trail()
    assert head.seq == 21
    with pytest.raises(TrailBroken, match="truncated") as caught:
        verify_trail(records[:18], PUBLIC, head)
    assert caught.value.seq == 19
    # without the head a cut at a record boundary is undetectable: that is what it is for
    verify_trail(records[:18], PUBLIC, None)


def test_a_head_not_signed_by_the_audit_key_is_refused() -> None:
    records, head = trail()
    other = ec.generate_private_key(ec.SECP256R1())
    forged = SignedHead(
        head.seq,
        head.hash,
        _signed(head_digest(head.seq, head.hash), other),
        "x",
    )
    with pytest.raises(TrailBroken, match="signed head"):
        verify_trail(records, PUBLIC, forged)


_field_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_events = st.builds(
    AuditEvent,
    action=_field_text,
    client_id=_field_text,
    role=_field_text,
    purpose=st.none() | _field_text,
    code=st.none() | _field_text,
    result=_field_text,
    request_id=_field_text,
    at=st.floats(min_value=0, max_value=4e9),
    detail=st.dictionaries(_field_text, st.none() | _field_text | st.integers(-(2**53), 2**53)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_events, max_size=5), st.binary(min_size=32, max_size=32))
def test_chaining_fields_gives_the_hashes_of_chaining_events(
    events: list[AuditEvent], prev_hash: bytes
) -> None:
    fields = [
        [e.action, e.client_id, e.role, e.purpose, e.code, e.result, e.request_id, e.at, e.detail]
        for e in events
    ]
    fast = [(seq, prev, digest) for seq, prev, digest, _, _ in chain_fields(prev_hash, 7, fields)]
    slow = [(r.seq, r.prev_hash, r.hash) for r in chain(prev_hash, 7, events)]
    assert fast == slow
    plain, prev = [], prev_hash
    for seq, e in enumerate(events, start=7):
        plain.append((seq, prev, (prev := _payload_hash(prev, seq, e))))
    assert fast == plain


class _Text(str):
    pass


@pytest.mark.parametrize(
    "fields",
    [
        # what the writer's fast encoding does not cover goes the general way, same bytes
        ["verify", 7, "verifier", None, "C", "200", "r", 1.5, {}],
        ["verify", _Text("bank"), "verifier", "p", None, "200", "r", 1.5, {}],
        ["verify", "bank", "verifier", None, None, 200, "r", 1.5, {"n": 1}],
        ["verify", "bank", "verifier", None, None, "200", "r", 1.5, {"b": None, "a": "é\n"}],
    ],
)
def test_chaining_unusual_fields_gives_the_hashes_of_their_payload(fields: list[Any]) -> None:
    event = AuditEvent(*fields)
    [(seq, _, digest, _, text)] = chain_fields(GENESIS, 3, [fields])
    assert (seq, digest) == (3, chain(GENESIS, 3, [event])[0].hash)
    assert digest == _payload_hash(GENESIS, 3, event)
    assert text == json.dumps(
        event.detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _payload_hash(prev_hash: bytes, seq: int, event: AuditEvent) -> bytes:
    """The record hash as docs/design.md §5.5 defines it, written out plainly."""
    payload = json.dumps(
        event.payload(seq), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(b"sealgate/audit/record/v1|" + prev_hash + payload.encode()).digest()


def _stored(record: AuditRecord, text: str) -> AuditRecord:
    return dataclasses.replace(record, stored_detail=text)


def test_the_stored_detail_is_what_is_hashed_and_a_duplicated_key_is_refused() -> None:
    records, head = trail()
    exact = [_stored(r, detail_json(r.event.detail)) for r in records]
    assert verify_trail(exact, PUBLIC, head).records == len(records)
    # {"n":5} hashed; stored with a second "n" that json.loads would drop, and a SQL
    # json_extract would read instead: the bytes differ from what was hashed
    doubled = list(exact)
    doubled[4] = _stored(exact[4], '{"n":99,"n":5}')
    with pytest.raises(TrailBroken) as caught:
        verify_trail(doubled, PUBLIC, head)
    assert caught.value.seq == 5
    # the same bytes in another spelling (spaces) are not the hashed bytes either
    spaced = list(exact)
    spaced[4] = _stored(exact[4], '{"n": 5}')
    with pytest.raises(TrailBroken, match="record 5: altered"):
        verify_trail(spaced, PUBLIC, head)


def test_a_detail_with_a_key_twice_is_refused_even_where_it_was_hashed_so() -> None:
    # An insider who rewrites a record and re-hashes from it on (no checkpoint after it)
    records = chain(GENESIS, 1, [event(i) for i in range(1, 6)])
    tampered = '{"n":3,"n":3}'
    rebuilt: list[AuditRecord] = []
    prev = GENESIS
    for r in records:
        text = tampered if r.seq == 3 else detail_json(r.event.detail)
        digest = record_hash(prev, r.seq, r.event, text)
        rebuilt.append(AuditRecord(r.seq, r.event, prev, digest, text))
        prev = digest
    with pytest.raises(TrailBroken, match="record 3: its detail holds a key twice"):
        verify_trail(rebuilt, PUBLIC)
    with pytest.raises(AuditError, match="twice"):
        parse_detail(tampered)


def test_heads_pushed_to_the_sink_must_all_be_in_the_trail() -> None:
    records, head = trail(40, (10, 20, 30))
    pushed = [
        sign(r.event.detail["head_seq"], bytes.fromhex(r.event.detail["head_hash"]))
        for r in records
        if r.event.action == "checkpoint"
    ]
    assert verify_trail(records, PUBLIC, head, pushed).checkpoints == 3
    # cut back to the second checkpoint, with a head made for it: the sink's third is gone
    cut = records[:22]
    old_head = pushed[1]
    with pytest.raises(TrailBroken, match="truncated: the trail ends at 22, a head in the sink"):
        verify_trail(cut, PUBLIC, old_head, pushed)
    verify_trail(cut, PUBLIC, old_head)  # without the sink, that cut would pass

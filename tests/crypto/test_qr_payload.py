"""The QR payload and the status list token: Base45, COSE_Sign1, claims, checked by pycose
(a COSE implementation not written here) and refused after any change."""

from __future__ import annotations

import zlib

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from sealgate.crypto.base45 import b45decode, b45encode
from sealgate.crypto.cose import PendingSign1
from sealgate.crypto.errors import (
    CoseBadSignature,
    CoseError,
    Expired,
    HolderMismatch,
    MalformedQr,
    UntrustedKey,
)
from sealgate.crypto.key_trust import KeyTrust, TrustedKey, Use
from sealgate.crypto.qr_payload import (
    PREFIX,
    QrClaims,
    encode_payload,
    holder_digest,
    prepare_payload,
    read_payload,
)
from sealgate.crypto.status_list import (
    ListStatus,
    StatusBits,
    prepare_status_list,
    read_status_list,
)

HOLDER_ID = "11010519491231002X"
CODE = "430900ZDXE31DD2417Z7GDVP"
NOW = 1_790_000_000


class Key:
    """A software P-256 key standing in for the token's (tests only)."""

    def __init__(self, *uses: str) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.trusted = TrustedKey.from_der(der, uses)

    def sign(self, pending: PendingSign1) -> bytes:
        # The HSM signs the digest: Prehashed, as C_Sign with CKM_ECDSA does.
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        return pending.finish(
            self.private.sign(pending.digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        )


def claims(**overrides: object) -> QrClaims:
    values: dict[str, object] = {
        "issuer": "430900",
        "code": CODE,
        "type": "无犯罪记录证明",
        "unit_name": "益阳市公安局",
        "unit_code": "11430900006151330B",
        "valid_from": "2026-11-22",
        "valid_until": "2027-05-21",
        "holder_kind": "person",
        "holder_name_masked": "张*",
        "holder_digest": holder_digest(CODE, HOLDER_ID),
        "status_list": "/v1/status-lists/0",
        "status_index": 7,
        "issued_at": NOW,
        "expires_at": NOW + 90,
    }
    values.update(overrides)
    return QrClaims(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def qr_key() -> Key:
    return Key(Use.QR)


def payload_of(key: Key, made: QrClaims) -> str:
    return encode_payload(key.sign(prepare_payload(made, key.trusted.kid)))


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_matches_rfc_9285(raw: bytes, encoded: str) -> None:
    assert b45encode(raw) == encoded
    assert b45decode(encoded) == raw


@pytest.mark.parametrize("bad", ["GGW", "A", "ab", ":::"])
def test_base45_refuses_what_it_cannot_be(bad: str) -> None:
    with pytest.raises(MalformedQr):
        b45decode(bad)


def test_a_payload_reads_back_its_claims(qr_key: Key) -> None:
    made = claims()
    text = payload_of(qr_key, made)
    assert text.startswith(PREFIX)
    assert len(text) < 600  # QR version 15-M holds 758 alphanumeric characters
    assert read_payload(text, KeyTrust([qr_key.trusted]), now=NOW + 1) == made


def test_pycose_verifies_the_payload_against_the_trusted_key(qr_key: Key) -> None:
    text = payload_of(qr_key, claims())
    cose = zlib.decompress(b45decode(text[len(PREFIX) :]))
    message = Sign1Message.decode(cose)
    assert message.phdr_encoded  # the protected header carries alg and kid
    public = qr_key.private.public_key().public_numbers()
    message.key = EC2Key(
        crv="P_256", x=public.x.to_bytes(32, "big"), y=public.y.to_bytes(32, "big")
    )
    assert message.verify_signature()
    assert cbor2.loads(message.payload)[-75001][0] == CODE


def test_every_altered_byte_of_the_signed_message_is_refused(qr_key: Key) -> None:
    text = payload_of(qr_key, claims())
    cose = zlib.decompress(b45decode(text[len(PREFIX) :]))
    trust = KeyTrust([qr_key.trusted])
    for position in range(len(cose)):
        altered = bytearray(cose)
        altered[position] ^= 0x01
        with pytest.raises(CoseError):
            read_payload(encode_payload(bytes(altered)), trust, now=NOW)


def test_an_altered_character_of_the_text_is_refused(qr_key: Key) -> None:
    text = payload_of(qr_key, claims())
    trust = KeyTrust([qr_key.trusted])
    for position in range(len(PREFIX), len(text), 7):
        swapped = "A" if text[position] != "A" else "B"
        with pytest.raises(CoseError):
            read_payload(text[:position] + swapped + text[position + 1 :], trust, now=NOW)


def test_a_key_not_trusted_for_qr_payloads_is_refused(qr_key: Key) -> None:
    other = Key(Use.STATUS_LIST)
    with pytest.raises(UntrustedKey):
        read_payload(payload_of(other, claims()), KeyTrust([other.trusted]), now=NOW)
    with pytest.raises(UntrustedKey):
        read_payload(payload_of(qr_key, claims()), KeyTrust([other.trusted]), now=NOW)


def test_a_dynamic_payload_expires(qr_key: Key) -> None:
    text = payload_of(qr_key, claims())
    trust = KeyTrust([qr_key.trusted])
    read_payload(text, trust, now=NOW + 89)
    with pytest.raises(Expired):
        read_payload(text, trust, now=NOW + 90)
    static = payload_of(qr_key, claims(expires_at=None))
    assert read_payload(static, trust, now=NOW + 10**8).expires_at is None


def test_the_holder_is_matched_by_the_full_identity_number_only(qr_key: Key) -> None:
    read = read_payload(payload_of(qr_key, claims()), KeyTrust([qr_key.trusted]), now=NOW)
    read.require_holder(HOLDER_ID.lower())  # as typed at a counter
    with pytest.raises(HolderMismatch):
        read.require_holder("110105194912310029")
    assert HOLDER_ID.encode() not in cbor2.dumps(read.to_cbor())


def test_a_zlib_bomb_and_foreign_text_are_refused(qr_key: Key) -> None:
    trust = KeyTrust([qr_key.trusted])
    bomb = PREFIX + b45encode(zlib.compress(bytes(10**6)))
    for text in (bomb, "HC1:" + b45encode(b"x"), PREFIX + "!!", PREFIX):
        with pytest.raises(MalformedQr):
            read_payload(text, trust, now=NOW)


def test_status_bits_are_two_a_proof_least_significant_first() -> None:
    bits = StatusBits(bytes(4))
    assert bits.set(1, ListStatus.REVOKED_OR_ENDED)
    assert bits.set(5, ListStatus.CHANGED)
    assert not bits.set(5, ListStatus.CHANGED)
    assert bytes(StatusBits.decompressed(bits.compressed())._data) == bytes([0b100, 0b1100, 0, 0])
    assert [bits.get(i) for i in (0, 1, 5)] == [
        ListStatus.VALID,
        ListStatus.REVOKED_OR_ENDED,
        ListStatus.CHANGED,
    ]


def test_a_status_list_token_is_checked_for_its_key_its_uri_and_its_expiry() -> None:
    key = Key(Use.STATUS_LIST)
    bits = StatusBits(bytes(16))
    bits.set(3, ListStatus.PLEDGED)
    pending = prepare_status_list(
        key.trusted.kid, "/v1/status-lists/0", bits.compressed(), issued_at=NOW, ttl=30,
        expires_at=NOW + 100,
    )  # fmt: skip
    token = key.sign(pending)
    trust = KeyTrust([key.trusted])
    listed = read_status_list(token, trust, uri="/v1/status-lists/0", now=NOW)
    assert listed.status(3) is ListStatus.PLEDGED
    assert listed.status(4) is ListStatus.VALID
    with pytest.raises(MalformedQr):
        read_status_list(token, trust, uri="/v1/status-lists/1", now=NOW)
    with pytest.raises(Expired):
        read_status_list(token, trust, uri="/v1/status-lists/0", now=NOW + 100)
    with pytest.raises(UntrustedKey):  # a status-list key is not a QR key, nor the reverse
        read_status_list(token, KeyTrust([Key(Use.QR).trusted]), uri="/v1/status-lists/0", now=NOW)
    altered = bytearray(token)
    altered[-70] ^= 0x40
    with pytest.raises(CoseBadSignature):
        read_status_list(bytes(altered), trust, uri="/v1/status-lists/0", now=NOW)


def test_the_trust_document_round_trips_and_refuses_a_wrong_kid() -> None:
    key = Key(Use.QR)
    document = KeyTrust([key.trusted]).document()
    assert KeyTrust.from_document(document).key(key.trusted.kid, Use.QR) == key.trusted
    document["keys"][0]["kid"] = "AAAAAAAAAAA"
    with pytest.raises(CoseError.__mro__[1]):  # CryptoError: a ContentError
        KeyTrust.from_document(document)

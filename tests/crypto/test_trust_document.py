"""The trust document: signed by the root over its RFC 8785 form, read back only with a
trusted root's signature intact, the gateway's keys with it (none in an older one)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sealgate.crypto import ContentError, TrustList
from sealgate.crypto.errors import UntrustedKey
from sealgate.crypto.key_trust import KeyTrust, Use
from sealgate.crypto.trust_document import (
    PendingTrustDocument,
    SealKeyEntry,
    TrustDocumentError,
    prepare_trust_document,
    read_trust_document,
)
from tests.crypto.signers import NOW, SEAL_ID, Pki, SoftSigner, make_pki
from tests.crypto.test_qr_payload import Key

QR_KEY = Key(Use.QR)
LIST_KEY = Key(Use.STATUS_LIST)


def entries(pki: Pki) -> list[SealKeyEntry]:
    kind, name = "proof", "电子证明专用章"
    return [SealKeyEntry(SEAL_ID, kind, name, "宁波市公安局", "X", 1, "retired", pki.seal, NOW)]


def signed(pki: Pki, version: int = 3, signer: SoftSigner | None = None) -> bytes:
    pending = prepare_trust_document(
        version=version,
        issued_at=NOW,
        roots=[pki.root],
        seal_keys=entries(pki),
        keys=KeyTrust([QR_KEY.trusted, LIST_KEY.trusted]),
        root_der=pki.root,
    )
    return pending.finish((signer or pki.root_signer).sign(pending.digest))


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_a_signed_document_reads_back(kind: str) -> None:
    pki = make_pki(kind, "ec")
    document = read_trust_document(signed(pki), TrustList.from_der([pki.root]))
    assert (document.version, document.issued_at) == (3, NOW)
    assert document.retirements == {pki.seal: NOW}
    body = json.loads(signed(pki))
    seal = body["document"]["seals"][0]
    assert seal["retired_at"] == "2026-03-01T08:30:00Z"
    assert seal["not_after"] == (NOW + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_another_key_cannot_finish_it(pki: Pki) -> None:
    with pytest.raises(ContentError):
        signed(pki, signer=pki.seal_signer)


def test_any_change_or_another_root_is_refused(pki: Pki) -> None:
    trust = TrustList.from_der([pki.root])
    body = json.loads(signed(pki))
    body["document"]["seals"][0]["retired_at"] = None  # "never retired"
    with pytest.raises(TrustDocumentError, match="does not verify"):
        read_trust_document(json.dumps(body).encode(), trust)
    other = make_pki()
    with pytest.raises(TrustDocumentError, match="not signed by a trusted root"):
        read_trust_document(signed(pki), TrustList.from_der([other.root]))
    for garbage in (b"", b"[]", b'{"document": {}}', b"\xff"):
        with pytest.raises(TrustDocumentError):
            read_trust_document(garbage, trust)


def test_versions_start_at_one(pki: Pki) -> None:
    with pytest.raises(ContentError):
        signed(pki, version=0)


def test_the_gateway_keys_read_back_each_for_its_use(pki: Pki) -> None:
    keys = read_trust_document(signed(pki), TrustList.from_der([pki.root])).keys
    assert keys.key(QR_KEY.trusted.kid, Use.QR) == QR_KEY.trusted
    with pytest.raises(UntrustedKey, match="does not allow"):
        keys.key(LIST_KEY.trusted.kid, Use.QR)
    with pytest.raises(UntrustedKey, match="not in the trust list"):
        keys.key(Key(Use.QR).trusted.kid, Use.QR)  # a key the root never listed


def test_a_gateway_key_changed_or_misnamed_is_refused(pki: Pki) -> None:
    trust = TrustList.from_der([pki.root])
    body = json.loads(signed(pki))
    body["document"]["keys"][1]["use"] = ["qr", "status-list"]  # "this key signs QR too"
    with pytest.raises(TrustDocumentError, match="does not verify"):
        read_trust_document(json.dumps(body).encode(), trust)
    # signed by the root, yet a kid that is not its key's: refused all the same
    document = json.loads(signed(pki))["document"]
    document["keys"][0]["kid"] = document["keys"][1]["kid"]
    pending = PendingTrustDocument(document, pki.root)
    with pytest.raises(TrustDocumentError, match="kid is not its key's"):
        read_trust_document(pending.finish(pki.root_signer.sign(pending.digest)), trust)


def test_a_document_published_before_the_gateway_keys_reads_with_none(pki: Pki) -> None:
    document = json.loads(signed(pki))["document"]
    del document["keys"]
    pending = PendingTrustDocument(document, pki.root)
    older = pending.finish(pki.root_signer.sign(pending.digest))
    listed = read_trust_document(older, TrustList.from_der([pki.root]))
    assert listed.retirements == {pki.seal: NOW} and listed.keys.keys() == []
    with pytest.raises(UntrustedKey):
        listed.keys.key(QR_KEY.trusted.kid, Use.QR)

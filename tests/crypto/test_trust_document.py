"""The trust document: signed by the root over its RFC 8785 form, read back only with a
trusted root's signature intact."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sealgate.crypto import ContentError, TrustList
from sealgate.crypto.trust_document import (
    SealKeyEntry,
    TrustDocumentError,
    prepare_trust_document,
    read_trust_document,
)
from tests.crypto.signers import NOW, SEAL_ID, Pki, SoftSigner, make_pki


def entries(pki: Pki) -> list[SealKeyEntry]:
    kind, name = "proof", "电子证明专用章"
    return [SealKeyEntry(SEAL_ID, kind, name, "宁波市公安局", "X", 1, "retired", pki.seal, NOW)]


def signed(pki: Pki, version: int = 3, signer: SoftSigner | None = None) -> bytes:
    pending = prepare_trust_document(
        version=version, issued_at=NOW, roots=[pki.root], seal_keys=entries(pki), root_der=pki.root
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

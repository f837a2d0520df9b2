"""Sealed proofs: valid DER that the real openssl verifies, and that tampering breaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from asn1crypto import cms, core
from hypothesis import given
from hypothesis import strategies as st

from sealgate.crypto import (
    ContentError,
    Endorsement,
    ProofError,
    ProofSealer,
    SealCertificateNotValid,
    SignatureAlgorithm,
    TrustList,
    _der,
    verify_proof,
)
from sealgate.crypto.proof import OID_ENDORSEMENT, OID_SEAL_ID, OID_VERIFICATION_CODE
from tests.crypto.conftest import OpenSSL
from tests.crypto.signers import CONTENT, ENDORSEMENT, NOW, SEAL_ID, Pki, make_pki

ID_DATA_DER = bytes.fromhex("06092a864886f70d010701")


def _signer_info(proof: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(proof, strict=True)["content"]["signer_infos"][0]


def test_openssl_verifies_and_returns_the_content(any_pki: Pki, openssl: OpenSSL) -> None:
    """Covers RSA-3072 seal under an EC root and an EC seal under an RSA-3072 root."""
    proof = any_pki.proof()
    result = openssl.cms_verify(proof, any_pki.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CONTENT
    assert verify_proof(proof, TrustList.from_der([any_pki.root])).content == CONTENT


def test_openssl_prints_the_signed_attributes(proof: bytes, openssl: OpenSSL) -> None:
    printed = openssl.run(
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", openssl.write("p.der", proof)
    )
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout.decode("utf-8")
    for expected in [
        "contentType (1.2.840.113549.1.9.3)",
        "messageDigest (1.2.840.113549.1.9.4)",
        "signingTime (1.2.840.113549.1.9.5)",
        "UTCTIME:Mar  1 08:30:00 2026 GMT",
        f"({OID_VERIFICATION_CODE})",
        "UTF8STRING:NB20260301-0001-7Q",
        f"({OID_SEAL_ID})",
        f"UTF8STRING:{SEAL_ID}",
        f"({OID_ENDORSEMENT})",
        "宁波银行股份有限公司",
        "GENERALIZEDTIME   :20260301083000Z",
    ]:
        assert expected in text


def test_asn1crypto_parses_the_private_attributes(proof: bytes) -> None:
    signer = _signer_info(proof)
    attributes = {a["type"].native: a["values"].native for a in signer["signed_attrs"]}
    assert attributes["sealgate_verification_code"] == ["NB20260301-0001-7Q"]
    assert attributes["sealgate_seal_id"] == [SEAL_ID]
    assert attributes["sealgate_endorsement"] == [
        {
            "extracting_unit": ENDORSEMENT.extracting_unit,
            "verifying_unit": ENDORSEMENT.verifying_unit,
            "extracted_at": NOW,
        }
    ]
    assert attributes["content_type"] == ["data"]
    assert attributes["signing_time"] == [NOW]


def test_structure_is_the_documented_shape(pki: Pki, proof: bytes) -> None:
    info = cms.ContentInfo.load(proof, strict=True)
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    assert signed["version"].native == "v1"
    assert [a["algorithm"].native for a in signed["digest_algorithms"]] == ["sha256"]
    assert signed["encap_content_info"]["content_type"].native == "data"
    assert signed["encap_content_info"]["content"].native == CONTENT
    assert [c.chosen.dump() for c in signed["certificates"]] == [pki.seal]
    signer = signed["signer_infos"][0]
    assert signer["version"].native == "v1"
    assert signer["sid"].name == "issuer_and_serial_number"
    assert signer["digest_algorithm"]["parameters"].native is None
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"


def test_output_is_der(proof: bytes, openssl: OpenSSL) -> None:
    """SET OFs sorted (X.690 §11.6), and openssl re-encodes it byte for byte."""
    signed = cms.ContentInfo.load(proof, strict=True)["content"]
    for set_of in (signed["signer_infos"][0]["signed_attrs"], signed["certificates"]):
        encodings = [element.dump() for element in set_of]
        assert encodings == sorted(encodings)
    reencoded = openssl.directory / "again.der"
    result = openssl.run(
        "cms", "-cmsout", "-inform", "DER", "-outform", "DER",
        "-in", openssl.write("p.der", proof), "-out", reencoded,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert reencoded.read_bytes() == proof


@pytest.mark.parametrize(
    "size", [0, 1, 0x2F, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0xFFFF - 0x600, 0xFFFF, 0x10000, 70000]
)
def test_every_length_form_is_der_and_verifies(pki: Pki, trust: TrustList, size: int) -> None:
    """The envelope's lengths are computed, not nested: across every DER length form
    (short, one, two and three octets, and the boundaries between them) the proof
    re-encodes to itself and verifies."""
    content = b'{"x":"' + b"a" * size + b'"}'
    proof = pki.proof(content)
    assert cms.ContentInfo.load(proof, strict=True).dump(force=True) == proof
    assert verify_proof(proof, trust).content == content


def test_digest_is_over_the_der_set_of_signed_attributes(pki: Pki) -> None:
    pending = pki.sealer().prepare(
        CONTENT, code="C1", seal_id=SEAL_ID, signing_time=NOW, endorsement=None
    )
    proof = pending.finish(pki.seal_signer.sign(pending.digest))
    attrs = _signer_info(proof)["signed_attrs"]
    import hashlib

    as_set = core.SetOf.load(b"\x31" + attrs.dump()[1:])  # [0] IMPLICIT -> SET OF
    assert hashlib.sha256(as_set.dump()).digest() == pending.digest
    names = {a["type"].native for a in attrs}
    assert "sealgate_endorsement" not in names  # no endorsement, no attribute


@pytest.mark.parametrize(
    ("when", "choice"),
    [
        (datetime(1950, 1, 1, tzinfo=UTC), "utc_time"),
        (datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), "utc_time"),
        (datetime(2050, 1, 1, tzinfo=UTC), "generalized_time"),
        (datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC), "generalized_time"),
    ],
)
def test_signing_time_encoding_follows_rfc5652(when: datetime, choice: str) -> None:
    # Certificates valid across both boundaries: a sealer signs only within its own.
    wide = make_pki(validity=(datetime(1940, 1, 1, tzinfo=UTC), datetime(2060, 1, 1, tzinfo=UTC)))
    proof = wide.proof(signing_time=when)
    attrs = {a["type"].native: a["values"][0] for a in _signer_info(proof)["signed_attrs"]}
    assert attrs["signing_time"].name == choice
    assert attrs["signing_time"].native == when


def test_a_sealer_signs_only_within_its_certificates_validity(pki: Pki) -> None:
    sealer = pki.sealer()
    start, end = sealer.validity
    assert start == NOW - timedelta(days=30) and end == NOW + timedelta(days=365)
    for outside in (start - timedelta(seconds=1), end + timedelta(seconds=1)):
        for _ in range(2):  # a refused time is not remembered as the batch's time
            with pytest.raises(SealCertificateNotValid, match="not at the signing time"):
                sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=outside)
        sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=NOW)
    for edge in (start, end):
        sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=edge)


def test_partial_endorsement_and_microseconds(pki: Pki, trust: TrustList) -> None:
    endorsement = Endorsement(verifying_unit="中国银行宁波分行")
    proof = pki.proof(endorsement=endorsement, signing_time=NOW.replace(microsecond=999))
    verified = verify_proof(proof, trust)
    assert verified.endorsement == endorsement
    assert verified.signing_time == NOW  # seconds precision, as DER UTCTime has


def test_sealer_refuses_bad_input(pki: Pki) -> None:
    sealer = pki.sealer()
    assert sealer.algorithm is SignatureAlgorithm.ECDSA_SHA256
    assert sealer.seal_id == SEAL_ID
    with pytest.raises(ContentError, match="not this certificate's seal"):
        sealer.prepare(CONTENT, code="C", seal_id="999", signing_time=NOW)
    with pytest.raises(ContentError):
        sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=datetime(2026, 1, 1))
    with pytest.raises(ContentError):
        sealer.prepare(CONTENT, code="", seal_id=SEAL_ID, signing_time=NOW)
    with pytest.raises(ContentError):
        sealer.prepare(CONTENT, code="\udc00", seal_id=SEAL_ID, signing_time=NOW)
    pending = sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=NOW)
    raw = pki.seal_signer.sign(pending.digest)
    with pytest.raises(ContentError, match="ECDSA-Sig-Value"):
        pending.finish(b"\x00" * 64)  # raw r||s, the classic PKCS#11 mistake
    with pytest.raises(ContentError):
        pending.finish(raw + b"\x00")
    with pytest.raises(ContentError):
        ProofSealer(b"not a certificate")


def test_rsa_sealer_checks_signature_length(any_pki: Pki) -> None:
    sealer = any_pki.sealer()
    pending = sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=NOW)
    if sealer.algorithm is SignatureAlgorithm.RSA_PKCS1_SHA256:
        with pytest.raises(ContentError, match="modulus"):
            pending.finish(b"\x01" * 256)
    assert pending.finish(any_pki.seal_signer.sign(pending.digest))


@given(st.integers(min_value=0, max_value=70000))
def test_der_length_helper_matches_asn1crypto(size: int) -> None:
    body = b"\x00" * size
    assert _der.tlv(0x04, body) == core.OctetString(body).dump()


@pytest.mark.slow
def test_single_byte_changes_are_rejected(any_pki: Pki, openssl: OpenSSL) -> None:
    """Change ~50 bytes spread over the whole proof and every byte of the content.

    verify_proof must reject every change. openssl must too, except where OpenSSL
    3.0 is knowingly lenient: it ignores the SignedData and SignerInfo version
    numbers, does not compare eContentType with the signed content-type attribute,
    and ignores the SignerInfo's signatureAlgorithm OID (the key decides). None of
    these fields is covered by the signature; verify_proof checks each. (The proof
    carries no copy of the root, which OpenSSL would also ignore for -CAfile's.)
    """
    proof = any_pki.proof()
    trust = TrustList.from_der([any_pki.root])
    assert any_pki.root not in proof
    content_at = proof.index(CONTENT)
    sig_alg = any_pki.sealer().algorithm.algorithm_identifier_der
    sig_alg_at = proof.rindex(sig_alg)
    after_seal = proof.index(any_pki.seal) + len(any_pki.seal)
    lenient = {
        proof.index(b"\x02\x01\x01") + 2,
        proof.index(b"\x02\x01\x01", after_seal) + 2,
        *range(proof.index(ID_DATA_DER), proof.index(ID_DATA_DER) + len(ID_DATA_DER)),
        *range(sig_alg_at, sig_alg_at + len(sig_alg)),
    }
    spread = {i * (len(proof) - 1) // 49 for i in range(50)}
    positions = sorted(spread | set(range(content_at, content_at + len(CONTENT))))
    openssl_accepted = []
    for position in positions:
        changed = bytearray(proof)
        changed[position] ^= 0x01 if position % 2 else 0xFF
        with pytest.raises(ProofError):
            verify_proof(bytes(changed), trust)
        if openssl.cms_verify(bytes(changed), any_pki.root).returncode == 0:
            openssl_accepted.append(position)
    assert set(openssl_accepted) <= lenient, [p for p in openssl_accepted if p not in lenient]


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]
        ),
    )
)
def test_time_helper_matches_asn1crypto(when: datetime) -> None:
    utc = when.astimezone(UTC).replace(microsecond=0)
    expected = (
        core.UTCTime(utc).dump() if 1950 <= utc.year <= 2049 else core.GeneralizedTime(utc).dump()
    )
    assert _der.time(when) == expected
    assert _der.generalized_time(when) == core.GeneralizedTime(utc).dump()

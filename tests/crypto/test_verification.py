"""verify_proof: each failure raises its own ProofError, and hostile bytes only MalformedProof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealgate.crypto import (
    BadSignature,
    ContentError,
    DigestMismatch,
    MalformedProof,
    ProofError,
    ProofSealer,
    SealNotValidAtSigningTime,
    TrustList,
    UntrustedSeal,
    certificate_pem,
    verify_proof,
)
from sealgate.crypto.verification import MAX_PROOF_SIZE
from tests.crypto.conftest import OpenSSL
from tests.crypto.signers import (
    CONTENT,
    ENDORSEMENT,
    KIND_NAME,
    NOW,
    SEAL_ID,
    UNIT_CODE,
    UNIT_NAME,
    Pki,
    SoftSigner,
    make_pki,
    make_root,
    make_seal,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_valid_proof(any_pki: Pki) -> None:
    proof = any_pki.proof()
    verified = verify_proof(proof, TrustList.from_pem(certificate_pem(any_pki.root)))
    assert verified.content == CONTENT
    assert verified.code == "NB20260301-0001-7Q"
    assert verified.seal_id == SEAL_ID
    assert verified.endorsement == ENDORSEMENT
    assert verified.signing_time == NOW
    assert verified.seal_certificate_der == any_pki.seal
    assert (verified.unit_name, verified.unit_code) == (UNIT_NAME, UNIT_CODE)


def test_wrong_root_in_trust_list(pki: Pki, proof: bytes) -> None:
    other = make_pki()
    with pytest.raises(UntrustedSeal):
        verify_proof(proof, TrustList.from_der([other.root]))


def test_root_is_matched_by_der_not_by_name(pki: Pki, trust: TrustList) -> None:
    """An impostor root with the trusted root's exact name issues its own seal."""
    impostor_signer, seal_signer = SoftSigner("ec"), SoftSigner("ec")
    impostor = make_root(impostor_signer)
    assert (
        x509.load_der_x509_certificate(impostor).subject
        == x509.load_der_x509_certificate(pki.root).subject
    )
    forged = Pki(
        impostor_signer, seal_signer, impostor, make_seal(impostor_signer, impostor, seal_signer)
    )
    with pytest.raises(UntrustedSeal):
        verify_proof(forged.proof(), trust)
    # Even when the proof carries the genuine root, the impostor's signature fails.
    genuine_root = Pki(impostor_signer, seal_signer, pki.root, forged.seal)
    with pytest.raises(UntrustedSeal):
        verify_proof(genuine_root.proof(), trust)


@pytest.mark.parametrize("offset", [timedelta(days=-31), timedelta(days=366)])
def test_signing_time_outside_seal_validity(pki: Pki, trust: TrustList, offset: timedelta) -> None:
    # ProofSealer refuses such a time; a faulty or hostile signer would not.
    sealer = pki.sealer()
    sealer._validity = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    with pytest.raises(SealNotValidAtSigningTime):
        verify_proof(pki.proof(signing_time=NOW + offset, sealer=sealer), trust)


def test_tampered_content(pki: Pki, trust: TrustList, proof: bytes) -> None:
    at = proof.index(CONTENT)
    tampered = (
        proof[:at] + CONTENT.replace("张三".encode(), "李四".encode()) + proof[at + len(CONTENT) :]
    )
    with pytest.raises(DigestMismatch):
        verify_proof(tampered, trust)


def test_tampered_signature(any_pki: Pki) -> None:
    proof = any_pki.proof()
    tampered = proof[:-1] + bytes([proof[-1] ^ 0x01])  # the signature is the last field
    with pytest.raises(BadSignature):
        verify_proof(tampered, TrustList.from_der([any_pki.root]))


def test_signature_by_another_key(pki: Pki, trust: TrustList) -> None:
    sealer = pki.sealer()
    pending = sealer.prepare(CONTENT, code="C", seal_id=SEAL_ID, signing_time=NOW)
    with pytest.raises(BadSignature):
        verify_proof(pending.finish(SoftSigner("ec").sign(pending.digest)), trust)


def _foreign_seal(pki: Pki, *, eku: x509.ObjectIdentifier | None, usage_ok: bool = True) -> bytes:
    """A seal certificate made with cryptography's builder, to vary EKU / keyUsage."""
    root = x509.load_der_x509_certificate(pki.root)
    assert isinstance(pki.root_signer.key, ec.EllipticCurvePrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, UNIT_NAME),
                    x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), UNIT_CODE),
                    x509.NameAttribute(NameOID.COMMON_NAME, UNIT_NAME + KIND_NAME),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, SEAL_ID),
                ]
            )
        )
        .issuer_name(root.subject)
        .public_key(serialization.load_der_public_key(pki.seal_signer.public_key_der))  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.KeyUsage(
                digital_signature=usage_ok,
                content_commitment=False,
                key_encipherment=not usage_ok,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(pki.root_signer.key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER
    )


@pytest.mark.parametrize(
    ("eku", "usage_ok"),
    [
        (None, True),  # no EKU at all
        (ExtendedKeyUsageOID.SERVER_AUTH, True),  # a TLS certificate is not a seal
        (ExtendedKeyUsageOID.CODE_SIGNING, True),
        (x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"), False),  # keyEncipherment only
    ],
)
def test_seal_without_document_signing(
    pki: Pki, trust: TrustList, eku: x509.ObjectIdentifier | None, usage_ok: bool
) -> None:
    seal = _foreign_seal(pki, eku=eku, usage_ok=usage_ok)
    forged = Pki(pki.root_signer, pki.seal_signer, pki.root, seal)
    with pytest.raises(UntrustedSeal):
        verify_proof(forged.proof(), trust)


def test_foreign_but_conforming_seal_is_accepted(pki: Pki, trust: TrustList) -> None:
    seal = _foreign_seal(pki, eku=x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"))
    forged = Pki(pki.root_signer, pki.seal_signer, pki.root, seal)
    assert verify_proof(forged.proof(), trust).unit_code == UNIT_CODE


def test_a_root_copy_in_the_proof_must_be_a_trusted_root(pki: Pki, trust: TrustList) -> None:
    def sealed(chain: list[bytes]) -> bytes:
        pending = ProofSealer(pki.seal, chain).prepare(
            CONTENT, code="C", seal_id=SEAL_ID, signing_time=NOW
        )
        return pending.finish(pki.seal_signer.sign(pending.digest))

    assert verify_proof(sealed([pki.root]), trust).seal_id == SEAL_ID
    other_root = _foreign_seal(pki, eku=x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"))
    with pytest.raises(UntrustedSeal):
        verify_proof(sealed([other_root]), trust)


def test_a_certificate_signature_claiming_unused_bits_is_refused(
    pki: Pki, trust: TrustList, openssl: OpenSSL
) -> None:
    """The signatureValue's unused-bits byte is covered by no signature; cryptography
    reads ``01 ... <even last byte>`` as the same signature, so the check is ours."""
    seal = make_seal(pki.root_signer, pki.root, pki.seal_signer)
    while x509.load_der_x509_certificate(seal).signature[-1] % 2:  # half of them, each try
        seal = make_seal(pki.root_signer, pki.root, pki.seal_signer)
    proof = Pki(pki.root_signer, pki.seal_signer, pki.root, seal).proof()
    assert verify_proof(proof, trust).seal_id == SEAL_ID
    signature = x509.load_der_x509_certificate(seal).signature
    unused_bits = proof.index(seal) + seal.rindex(b"\x00" + signature)
    tampered = bytearray(proof)
    tampered[unused_bits] = 0x01
    changed_seal = bytes(tampered[proof.index(seal) : proof.index(seal) + len(seal)])
    x509.load_der_x509_certificate(changed_seal).verify_directly_issued_by(
        x509.load_der_x509_certificate(pki.root)
    )  # cryptography alone: still "issued by the root"
    with pytest.raises(MalformedProof, match="unused bits"):
        verify_proof(bytes(tampered), trust)
    assert openssl.cms_verify(bytes(tampered), pki.root).returncode != 0


def _nested(depth: int) -> bytes:
    der = b"\x05\x00"
    for _ in range(depth):
        n = len(der)
        size = (n.bit_length() + 7) // 8
        der = (
            b"\x30"
            + (bytes([n]) if n < 0x80 else bytes([0x80 | size]) + n.to_bytes(size, "big"))
            + der
        )
    return der


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00",
        b"\x30\x80",
        b"\x30\x80" * 50_000,  # indefinite-length nesting
        _nested(20_000),  # definite-length nesting, ~80 KiB
        b"\x30\x84\xff\xff\xff\xff",
        b"\x06\x00",
        b"-----BEGIN CMS-----",
        bytes(MAX_PROOF_SIZE + 1),
    ],
    ids=lambda b: f"{b[:6].hex()}..{len(b)}",
)
def test_garbage_is_malformed(trust: TrustList, garbage: bytes) -> None:
    with pytest.raises(MalformedProof):
        verify_proof(garbage, trust)


def test_non_bytes_is_malformed(trust: TrustList) -> None:
    with pytest.raises(MalformedProof):
        verify_proof("not bytes", trust)  # type: ignore[arg-type]


def test_trailing_data_is_malformed(trust: TrustList, proof: bytes) -> None:
    with pytest.raises(MalformedProof):
        verify_proof(proof + b"\x00", trust)


def test_trust_list_rejects_garbage() -> None:
    with pytest.raises(ContentError):
        TrustList.from_der([b"junk"])
    with pytest.raises(ContentError):
        TrustList.from_pem("no certificates here")


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    trust = _FUZZ_TRUST
    with pytest.raises(MalformedProof):
        verify_proof(data, trust)


@FUZZ
@given(st.data())
def test_fuzz_truncations(data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(_FUZZ_PROOF) - 1))
    with pytest.raises(MalformedProof):
        verify_proof(_FUZZ_PROOF[:cut], _FUZZ_TRUST)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_mutations(changes: list[tuple[int, int]]) -> None:
    mutated = bytearray(_FUZZ_PROOF)
    for position, value in changes:
        mutated[position % len(mutated)] = value
    if bytes(mutated) == _FUZZ_PROOF:
        return
    with pytest.raises(ProofError):
        verify_proof(bytes(mutated), _FUZZ_TRUST)


@FUZZ
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=64))
def test_fuzz_insertions(position: int, inserted: bytes) -> None:
    at = position % (len(_FUZZ_PROOF) + 1)
    with pytest.raises(ProofError):
        verify_proof(_FUZZ_PROOF[:at] + inserted + _FUZZ_PROOF[at:], _FUZZ_TRUST)


# Hypothesis tests cannot take function-scoped fixtures; one PKI for all fuzzing.
_FUZZ_PKI = make_pki()
_FUZZ_PROOF = _FUZZ_PKI.proof()
_FUZZ_TRUST = TrustList.from_der([_FUZZ_PKI.root])


@pytest.mark.parametrize("name", ["indefinite-outer.der", "length-nonminimal.der"])
def test_ber_re_encodings_of_a_valid_proof_are_refused(name: str) -> None:
    """One proof, one byte form: BER variants (found by fuzzing) must not verify."""
    from pathlib import Path

    corpus = Path(__file__).parent.parent / "fuzz" / "corpus"
    trust = TrustList.from_der(p.read_bytes() for p in sorted((corpus / "trust").iterdir()))
    assert verify_proof((corpus / "der" / "valid-ec-seal-only.der").read_bytes(), trust)
    with pytest.raises(MalformedProof, match="not DER"):
        verify_proof((corpus / "der" / name).read_bytes(), trust)

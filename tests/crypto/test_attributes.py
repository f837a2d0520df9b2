"""The proof's attributes: the current arc (GnuTLS parses it), signing-certificate-v2, the
first proofs' arc still read, and the re-encodings a checker must refuse."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from asn1crypto import cms, core, x509
from cryptography.hazmat.primitives.asymmetric import utils
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import async_validate_cms_signature
from pyhanko_certvalidator import ValidationContext

from sealgate.crypto import MalformedProof, TrustList, verify_proof
from sealgate.crypto.algorithms import P256_ORDER, is_high_s
from sealgate.crypto.attributes import (
    ARC,
    LEGACY_ARC,
    OID_SIGNATURE_TIME_STAMP_TOKEN,
    OID_SIGNING_CERTIFICATE_V2,
    ProofFormat,
)
from sealgate.crypto.proof import OID_VERIFICATION_CODE
from sealgate.crypto.verification import signed_parts
from tests.crypto.conftest import OpenSSL
from tests.crypto.reseal import attribute_der, legacy, reseal, signed_attributes
from tests.crypto.signers import NOW, Pki, make_pki, make_seal


def test_every_arc_fits_in_a_signed_32_bit_integer() -> None:
    assert all(int(arc) < 2**31 for arc in OID_VERIFICATION_CODE.split("."))
    assert OID_VERIFICATION_CODE.startswith(ARC + ".")
    assert any(int(arc) >= 2**64 for arc in LEGACY_ARC.split("."))  # why it moved


def certtool_p7_info(openssl: OpenSSL, proof: bytes) -> subprocess.CompletedProcess[bytes]:
    """GnuTLS's ``certtool --p7-info`` on the proof (DER)."""
    path = openssl.write("p.der", proof)
    return subprocess.run(
        ["certtool", "--p7-info", "--inder", "--infile", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_certtool_parses_a_proof(proof: bytes, openssl: OpenSSL) -> None:
    """GnuTLS (libtasn1) refused the UUID arc: "Error in DER parsing"."""
    result = certtool_p7_info(openssl, proof)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "Signers:" in out
    assert OID_VERIFICATION_CODE in out
    assert OID_SIGNING_CERTIFICATE_V2 in out or "signingCertificateV2" in out


def test_certtool_refused_the_first_format(pki: Pki, openssl: OpenSSL) -> None:
    """The reason for the move, shown with the real tool: a legacy proof does not parse."""
    old = reseal(pki.proof(), pki.seal_signer, attributes=legacy)
    result = certtool_p7_info(openssl, old)
    assert result.returncode != 0
    assert b"DER" in result.stderr + result.stdout


def test_signing_certificate_v2_names_the_seal(pki: Pki, proof: bytes) -> None:
    signer = cms.ContentInfo.load(proof)["content"]["signer_infos"][0]
    values = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    cert_id = values["signing_certificate_v2"]["certs"][0]
    seal = cms.Certificate.load(pki.seal)
    assert cert_id["hash_algorithm"]["algorithm"].native == "sha256"
    assert cert_id["cert_hash"].native == hashlib.sha256(pki.seal).digest()
    assert cert_id["issuer_serial"]["serial_number"].native == seal.serial_number
    assert verify_proof(proof, TrustList.from_der([pki.root])).proof_format is ProofFormat.CADES


def reissued(pki: Pki) -> bytes:
    """The seal's certificate issued again: same key, issuer and serial, valid longer."""
    serial = cms.Certificate.load(pki.seal).serial_number
    longer = NOW + timedelta(days=700)
    return make_seal(pki.root_signer, pki.root, pki.seal_signer, not_after=longer, serial=serial)


def pyhanko_status(pki: Pki, proof: bytes) -> Any:
    """pyHanko's CMS validation of the proof (signature, chain to the root, and the
    signing-certificate-v2 attribute against the certificate it finds), at NOW."""
    context = ValidationContext(trust_roots=[x509.Certificate.load(pki.root)], moment=NOW)
    signed_data = cms.ContentInfo.load(proof)["content"]
    return asyncio.run(async_validate_cms_signature(signed_data, validation_context=context))


def test_pyhanko_accepts_the_signing_certificate(pki: Pki, proof: bytes) -> None:
    status = pyhanko_status(pki, proof)
    assert (status.intact, status.valid, status.trusted) == (True, True, True)
    assert status.signing_cert.dump() == pki.seal


def test_a_signing_certificate_of_another_certificate_is_refused(pki: Pki, proof: bytes) -> None:
    """OpenSSL 3.0 accepts this proof: the certificate it carries is not the one signed.
    pyHanko refuses it (NO_SIGNING_CERTIFICATE_FOUND), and so do we."""
    swapped = reseal(proof, certificates=[reissued(pki)])
    with pytest.raises(SignatureValidationError, match="Signing certificate attribute"):
        pyhanko_status(pki, swapped)
    with pytest.raises(MalformedProof, match="signing-certificate-v2"):
        verify_proof(swapped, TrustList.from_der([pki.root]))


def test_the_first_format_still_verifies(pki: Pki, openssl: OpenSSL) -> None:
    old = reseal(pki.proof(), pki.seal_signer, attributes=legacy)
    verified = verify_proof(old, TrustList.from_der([pki.root]))
    assert verified.proof_format is ProofFormat.LEGACY
    assert verified.code == "NB20260301-0001-7Q"
    assert verified.endorsement is not None
    assert openssl.cms_verify(old, pki.root).returncode == 0


def test_a_mix_of_both_formats_is_refused(pki: Pki) -> None:
    def mixed(attrs: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        code = next(v for o, v in attrs if o == OID_VERIFICATION_CODE)
        return [*attrs, (f"{LEGACY_ARC}.1.1", code)]

    with pytest.raises(MalformedProof, match="signed attributes"):
        verify_proof(
            reseal(pki.proof(), pki.seal_signer, attributes=mixed), TrustList.from_der([pki.root])
        )


def test_a_current_proof_without_signing_certificate_is_refused(pki: Pki) -> None:
    def without(attrs: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(o, v) for o, v in attrs if o != OID_SIGNING_CERTIFICATE_V2]

    with pytest.raises(MalformedProof, match="missing"):
        verify_proof(
            reseal(pki.proof(), pki.seal_signer, attributes=without),
            TrustList.from_der([pki.root]),
        )


def test_sealed_signatures_have_a_low_s(pki: Pki) -> None:
    # A software signer's S is above n/2 half the time; 40 proofs all low.
    for _ in range(40):
        signer = cms.ContentInfo.load(pki.proof())["content"]["signer_infos"][0]
        assert not is_high_s(signer["signature"].native)


def test_a_flipped_s_is_refused_but_keeps_verifying_with_openssl(
    pki: Pki, proof: bytes, openssl: OpenSSL
) -> None:
    flipped = reseal(proof, flip_s=True)
    signature = cms.ContentInfo.load(flipped)["content"]["signer_infos"][0]["signature"].native
    _, s = utils.decode_dss_signature(signature)
    assert s > P256_ORDER // 2
    assert openssl.cms_verify(flipped, pki.root).returncode == 0  # why we must refuse it
    with pytest.raises(MalformedProof, match="high S"):
        verify_proof(flipped, TrustList.from_der([pki.root]))
    # the signed parts, what the registry compares, are the same
    assert signed_parts(flipped) == signed_parts(proof)


def test_a_legacy_proof_with_a_high_s_still_verifies(pki: Pki) -> None:
    """Half the first proofs were sealed with a high S; they stay readable."""
    old = reseal(pki.proof(), pki.seal_signer, attributes=legacy)
    for candidate in (old, reseal(old, flip_s=True)):
        assert verify_proof(candidate, TrustList.from_der([pki.root])).code


def test_unknown_unsigned_attributes_are_refused(pki: Pki, proof: bytes) -> None:
    added = reseal(proof, unsigned=[("1.2.3.4", core.UTF8String("hello").dump())])
    with pytest.raises(MalformedProof, match=r"unexpected unsigned attribute 1\.2\.3\.4"):
        verify_proof(added, TrustList.from_der([pki.root]))


def test_a_signature_timestamp_is_the_one_unsigned_attribute_allowed(
    pki: Pki, proof: bytes
) -> None:
    """Its token is handed on unchecked (the timestamp check is its own module's)."""
    token = cms.ContentInfo({"content_type": "data", "content": b"token"}).dump()
    stamped = reseal(proof, unsigned=[(OID_SIGNATURE_TIME_STAMP_TOKEN, token)])
    verified = verify_proof(stamped, TrustList.from_der([pki.root]))
    assert verified.timestamp_token == token
    assert (
        verified.signature
        == cms.ContentInfo.load(proof)["content"]["signer_infos"][0]["signature"].native
    )
    twice = reseal(
        proof,
        unsigned=[(OID_SIGNATURE_TIME_STAMP_TOKEN, token), ("1.2.3.4", core.Null().dump())],
    )
    with pytest.raises(MalformedProof, match="unsigned"):
        verify_proof(twice, TrustList.from_der([pki.root]))


def test_two_certificates_matching_the_signer_are_refused(pki: Pki, proof: bytes) -> None:
    """Which of the two signed would be the toolkit's guess."""
    doubled = reseal(proof, certificates=sorted([pki.seal, reissued(pki)]))
    with pytest.raises(MalformedProof, match="more than one certificate matches the signer"):
        verify_proof(doubled, TrustList.from_der([pki.root]))


def test_resealed_attributes_are_what_signed_parts_compares() -> None:
    pki = make_pki()
    proof = pki.proof()
    assert signed_parts(proof)[1][0] == 0x31  # an explicit SET OF, as signed
    assert [o for o, _ in signed_attributes(proof)].count(OID_SIGNING_CERTIFICATE_V2) == 1
    assert attribute_der("1.2.3", b"\x05\x00").startswith(b"\x30")

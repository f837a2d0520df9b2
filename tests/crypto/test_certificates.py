"""Root and seal certificates, checked by cryptography and by the openssl binary."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from sealgate.crypto import (
    BadSignature,
    ContentError,
    certificate_pem,
    prepare_seal_certificate,
    public_key_der_of,
)
from sealgate.crypto.certificates import DOCUMENT_SIGNING, EMAIL_PROTECTION
from tests.crypto.conftest import OpenSSL
from tests.crypto.signers import (
    KIND_NAME,
    NOW,
    SEAL_ID,
    UNIT_CODE,
    UNIT_NAME,
    Pki,
    SoftSigner,
)


def test_root_is_a_self_signed_ca(any_pki: Pki) -> None:
    root = x509.load_der_x509_certificate(any_pki.root)
    root.verify_directly_issued_by(root)
    constraints = root.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = root.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert public_key_der_of(any_pki.root) == any_pki.root_signer.public_key_der


def test_seal_certificate_fields(any_pki: Pki) -> None:
    seal = x509.load_der_x509_certificate(any_pki.seal)
    root = x509.load_der_x509_certificate(any_pki.root)
    seal.verify_directly_issued_by(root)
    assert [(a.oid.dotted_string, a.value) for a in seal.subject] == [
        ("2.5.4.6", "CN"),
        ("2.5.4.10", UNIT_NAME),
        ("2.5.4.97", UNIT_CODE),
        ("2.5.4.11", KIND_NAME),
        ("2.5.4.3", UNIT_NAME + KIND_NAME),
        ("2.5.4.5", SEAL_ID),
    ]
    # Chinese text must be UTF8String, not a lossy legacy string type.
    string_types = {
        rdn[0]["type"].dotted: rdn[0]["value"].name
        for rdn in asn1_x509.Certificate.load(any_pki.seal).subject.chosen
    }
    assert string_types == {
        "2.5.4.6": "printable_string",
        "2.5.4.10": "utf8_string",
        "2.5.4.97": "utf8_string",
        "2.5.4.11": "utf8_string",
        "2.5.4.3": "utf8_string",
        "2.5.4.5": "printable_string",
    }
    extensions = seal.extensions
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # documentSigning (docs/design.md §5.2), and emailProtection for OpenSSL's S/MIME signer check
    assert list(eku) == [
        x509.ObjectIdentifier(DOCUMENT_SIGNING),
        x509.ObjectIdentifier(EMAIL_PROTECTION),
    ]
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    assert seal.issuer == root.subject
    assert 0 < seal.serial_number < 2**127
    assert public_key_der_of(any_pki.seal) == any_pki.seal_signer.public_key_der


def test_openssl_text_and_verify(any_pki: Pki, openssl: OpenSSL) -> None:
    seal_pem = openssl.write("seal.pem", certificate_pem(any_pki.seal))
    root_pem = openssl.write("root.pem", certificate_pem(any_pki.root))
    shown = openssl.run("x509", "-in", seal_pem, "-noout", "-text", "-nameopt", "utf8")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode("utf-8")
    assert (
        f"Subject: C=CN, O={UNIT_NAME}, organizationIdentifier={UNIT_CODE}, OU={KIND_NAME}, "
        f"CN={UNIT_NAME}{KIND_NAME}, serialNumber={SEAL_ID}"
    ) in text
    assert "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation" in text
    assert "Document Signing" in text or DOCUMENT_SIGNING in text
    assert "X509v3 Basic Constraints: \n                CA:FALSE" in text
    root_text = openssl.run("x509", "-in", root_pem, "-noout", "-text").stdout.decode()
    assert "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0" in root_text
    assert "Certificate Sign, CRL Sign" in root_text

    verified = openssl.run(
        "verify", "-CAfile", root_pem, "-purpose", "smimesign",
        "-attime", str(int(NOW.timestamp())), seal_pem,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().endswith(b"OK")


def test_pem_round_trip(pki: Pki) -> None:
    pem = certificate_pem(pki.seal)
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    loaded = x509.load_pem_x509_certificate(pem.encode())
    assert loaded.public_bytes(serialization.Encoding.DER) == pki.seal


def _seal(pki: Pki, **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "issuer_certificate_der": pki.root,
        "unit_name": UNIT_NAME,
        "unit_code": UNIT_CODE,
        "seal_id": SEAL_ID,
        "kind_name": KIND_NAME,
        "not_before": NOW,
        "not_after": NOW + timedelta(days=1),
        "serial": 12345,
    }
    arguments.update(overrides)
    pending = prepare_seal_certificate(pki.seal_signer.public_key_der, **arguments)  # type: ignore[arg-type]
    return pending.finish(pki.root_signer.sign(pending.digest))


@pytest.mark.parametrize(
    "overrides",
    [
        {"unit_code": "1133020000298599"},  # too short
        {"unit_code": "11330200002985999I"},  # I is not in the GB 32100 alphabet
        {"seal_id": "印章-1"},  # serialNumber must be a PrintableString
        {"unit_name": " "},
        {"serial": 0},
        {"serial": -5},
        {"serial": 2**159},
        {"not_before": datetime(2026, 3, 1)},  # naive: refused, never guessed
        {"not_after": NOW - timedelta(days=1)},
        {"not_after": NOW + timedelta(days=365 * 20)},  # outlives the root
        {"issuer_certificate_der": b"\x30\x03\x02\x01\x01"},
    ],
    ids=repr,
)
def test_rejects_bad_seal_parameters(pki: Pki, overrides: dict[str, object]) -> None:
    with pytest.raises(ContentError):
        _seal(pki, **overrides)


def test_issuer_must_be_a_ca(pki: Pki) -> None:
    with pytest.raises(ContentError, match="not a CA"):
        _seal(pki, issuer_certificate_der=pki.seal)


def test_finish_verifies_the_hsm_signature(pki: Pki) -> None:
    pending = prepare_seal_certificate(
        pki.seal_signer.public_key_der,
        issuer_certificate_der=pki.root,
        unit_name=UNIT_NAME,
        unit_code=UNIT_CODE,
        seal_id=SEAL_ID,
        kind_name=KIND_NAME,
        not_before=NOW,
        not_after=NOW + timedelta(days=1),
        serial=1,
    )
    wrong_key = SoftSigner("ec")
    with pytest.raises(BadSignature):
        pending.finish(wrong_key.sign(pending.digest))


def test_rejects_unsupported_keys(pki: Pki) -> None:
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ContentError):
        prepare_seal_certificate(
            p384,
            issuer_certificate_der=pki.root,
            unit_name=UNIT_NAME,
            unit_code=UNIT_CODE,
            seal_id=SEAL_ID,
            kind_name=KIND_NAME,
            not_before=NOW,
            not_after=NOW + timedelta(days=1),
            serial=1,
        )

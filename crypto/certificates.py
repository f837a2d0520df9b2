"""X.509 certificates for the seal root CA and the electronic seals it issues.

Two-phase like everything here: ``prepare_*`` builds the TBSCertificate and hands
back its SHA-256 digest for the HSM; :meth:`PendingCertificate.finish` embeds the
HSM signature. Serials: callers pass ``secrets.randbits(127)`` (positive, < 2**159,
unpredictable; CA/B BR §7.1 asks for >= 64 random bits).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core, keys, x509
from cryptography.exceptions import InvalidSignature

from sealgate.crypto import _der
from sealgate.crypto.algorithms import (
    SignatureAlgorithm,
    load_public_key,
    signature_algorithm_of,
    verify_digest_signature,
)
from sealgate.crypto.errors import BadSignature, ContentError

__all__ = [
    "DOCUMENT_SIGNING",
    "EMAIL_PROTECTION",
    "TIME_STAMPING",
    "PendingCertificate",
    "certificate_pem",
    "certificate_serial",
    "certificate_validity",
    "prepare_root_certificate",
    "prepare_seal_certificate",
    "prepare_tsa_certificate",
    "public_key_der_of",
]

#: id-kp-documentSigning, RFC 9336.
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"
#: id-kp-emailProtection, RFC 5280.
EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"
#: 统一社会信用代码 (GB 32100-2015): 18 characters from this alphabet.
_UNIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
#: X.520 PrintableString, which serialNumber (2.5.4.5) must be.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")
_MAX_SERIAL = 1 << 159  # serial fits in 20 octets (RFC 5280 §4.1.2.2)


@dataclass(frozen=True, slots=True)
class PendingCertificate:
    """A TBSCertificate awaiting the issuer's signature (or a TBSCertList: a CRL is
    signed the same way, :mod:`sealgate.crypto.crl`)."""

    tbs_der: bytes
    algorithm: SignatureAlgorithm
    issuer_public_key_der: bytes

    @property
    def digest(self) -> bytes:
        """SHA-256 of the TBSCertificate DER: what the HSM signs."""
        return hashlib.sha256(self.tbs_der).digest()

    def finish(self, signature: bytes) -> bytes:
        """Certificate DER. The signature is verified first: certificates are rare and
        permanent, so a key mix-up in the HSM must fail here, not at a bank."""
        key = load_public_key(self.issuer_public_key_der)
        try:
            verify_digest_signature(key, signature, self.digest)
        except InvalidSignature as exc:
            raise BadSignature("signature does not verify with the issuer key") from exc
        bit_string = _der.tlv(0x03, b"\x00" + signature)
        return _der.tlv(
            _der.SEQUENCE,
            self.tbs_der + self.algorithm.algorithm_identifier_der + bit_string,
        )


def certificate_pem(der: bytes) -> str:
    """PEM text of a DER certificate."""
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def public_key_der_of(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of a certificate."""
    cert = _load(cert_der)
    spki: bytes = cert["tbs_certificate"]["subject_public_key_info"].dump()
    return spki


def prepare_root_certificate(
    public_key_der: bytes,
    *,
    common_name: str,
    organization: str,
    not_before: datetime,
    not_after: datetime,
    serial: int,
) -> PendingCertificate:
    """Self-signed root: CA:TRUE pathLen 0 (it only issues seals), keyCertSign + cRLSign."""
    key = load_public_key(public_key_der)
    spki = _spki(public_key_der)
    ski = _key_identifier(spki)
    name = _name(
        [
            ("country_name", _printable("CN")),
            ("organization_name", _utf8(organization)),
            ("common_name", _utf8(common_name)),
        ]
    )
    extensions = [
        _extension("basic_constraints", {"ca": True, "path_len_constraint": 0}, critical=True),
        _extension("key_usage", x509.KeyUsage({"key_cert_sign", "crl_sign"}), critical=True),
        _extension("key_identifier", core.OctetString(ski)),
        _extension("authority_key_identifier", {"key_identifier": ski}),
    ]
    algorithm = signature_algorithm_of(key)
    tbs = _tbs(serial, algorithm, name, name, not_before, not_after, spki, extensions)
    return PendingCertificate(tbs, algorithm, spki.dump())


def prepare_seal_certificate(
    public_key_der: bytes,
    *,
    issuer_certificate_der: bytes,
    unit_name: str,
    unit_code: str,
    seal_id: str,
    kind_name: str,
    not_before: datetime,
    not_after: datetime,
    serial: int,
    crl_url: str | None = None,
) -> PendingCertificate:
    """An electronic seal (电子印章) certificate for one unit and seal kind.

    Subject C=CN, O=unit_name, organizationIdentifier=unit_code (统一社会信用代码),
    OU=kind_name, CN=unit_name+kind_name, serialNumber=seal_id. End entity,
    digitalSignature + nonRepudiation, EKU documentSigning (RFC 9336) and emailProtection;
    with ``crl_url``, a CRL distribution point naming where the root's CRL is published.
    """
    if not _UNIT_CODE.fullmatch(unit_code):
        raise ContentError(f"unit_code is not an 18-character 统一社会信用代码: {unit_code!r}")
    if not _PRINTABLE.fullmatch(seal_id):
        raise ContentError(f"seal_id must be a PrintableString: {seal_id!r}")
    for label, value in (("unit_name", unit_name), ("kind_name", kind_name)):
        if not value.strip():
            raise ContentError(f"{label} is empty")
    issuer = _load(issuer_certificate_der)
    issuer_tbs = issuer["tbs_certificate"]
    issuer_key = load_public_key(issuer_tbs["subject_public_key_info"].dump())
    if not issuer.ca:
        raise ContentError("issuer certificate is not a CA")
    issuer_validity = issuer_tbs["validity"]
    if (
        _der.as_utc(not_before) < issuer_validity["not_before"].native
        or _der.as_utc(not_after) > issuer_validity["not_after"].native
    ):
        raise ContentError("seal validity must lie within the issuer's validity")
    load_public_key(public_key_der)  # validates: P-256 or RSA >= 2048
    spki = _spki(public_key_der)
    issuer_ski = issuer.key_identifier or _key_identifier(issuer_tbs["subject_public_key_info"])
    subject = _name(
        [
            ("country_name", _printable("CN")),
            ("organization_name", _utf8(unit_name)),
            ("organization_identifier", _utf8(unit_code)),
            ("organizational_unit_name", _utf8(kind_name)),
            ("common_name", _utf8(f"{unit_name}{kind_name}")),
            ("serial_number", _printable(seal_id)),
        ]
    )
    extensions = [
        _extension("basic_constraints", {"ca": False}),
        _extension(
            "key_usage", x509.KeyUsage({"digital_signature", "non_repudiation"}), critical=True
        ),
        # emailProtection beside documentSigning: OpenSSL (3.x) takes a CMS signer whose
        # EKU lacks it as unfit for S/MIME signing, and plain `openssl cms -verify` must
        # accept a proof (docs/design.md §5.1, §5.2).
        _extension(
            "extended_key_usage",
            x509.ExtKeyUsageSyntax([DOCUMENT_SIGNING, EMAIL_PROTECTION]),
        ),
        _extension("key_identifier", core.OctetString(_key_identifier(spki))),
        _extension("authority_key_identifier", {"key_identifier": issuer_ski}),
    ]
    if crl_url is not None:
        point = {"full_name": [x509.GeneralName(name="uniform_resource_identifier", value=crl_url)]}
        extensions.append(_extension("crl_distribution_points", [{"distribution_point": point}]))
    algorithm = signature_algorithm_of(issuer_key)
    tbs = _tbs(
        serial, algorithm, issuer_tbs["subject"], subject, not_before, not_after, spki, extensions
    )
    return PendingCertificate(tbs, algorithm, issuer_tbs["subject_public_key_info"].dump())


def certificate_validity(cert_der: bytes) -> tuple[datetime, datetime]:
    """``(not_before, not_after)`` of a DER certificate, as aware UTC datetimes."""
    validity = _load(cert_der)["tbs_certificate"]["validity"]
    return validity["not_before"].native, validity["not_after"].native


def certificate_serial(cert_der: bytes) -> int:
    """The serial number of a DER certificate (what a CRL lists it by)."""
    serial: int = _load(cert_der)["tbs_certificate"]["serial_number"].native
    return serial


def _load(cert_der: bytes) -> x509.Certificate:
    try:
        cert = x509.Certificate.load(cert_der, strict=True)
        cert["tbs_certificate"]["subject_public_key_info"].dump()
    except (ValueError, TypeError) as exc:
        raise ContentError("not a DER certificate") from exc
    return cert


def _spki(public_key_der: bytes) -> keys.PublicKeyInfo:
    """The caller's exact SPKI DER, already validated by :func:`load_public_key`."""
    return keys.PublicKeyInfo.load(public_key_der)


def _key_identifier(spki: keys.PublicKeyInfo) -> bytes:
    """RFC 7093 §2 method 1: leftmost 160 bits of SHA-256 of the subjectPublicKey."""
    return hashlib.sha256(spki["public_key"].contents[1:]).digest()[:20]


def _utf8(value: str) -> x509.DirectoryString:
    return x509.DirectoryString(name="utf8_string", value=value)


def _printable(value: str) -> x509.DirectoryString:
    return x509.DirectoryString(name="printable_string", value=value)


def _name(attributes: list[tuple[str, x509.DirectoryString]]) -> x509.Name:
    """A Name in exactly the given RDN order (asn1crypto's Name.build reorders)."""
    rdns = [
        x509.RelativeDistinguishedName([x509.NameTypeAndValue({"type": t, "value": v})])
        for t, v in attributes
    ]
    return x509.Name(name="", value=x509.RDNSequence(rdns))


def _extension(name: str, value: object, *, critical: bool = False) -> x509.Extension:
    return x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def _time(when: datetime) -> x509.Time:
    utc = _der.as_utc(when)
    if 1950 <= utc.year <= 2049:
        return x509.Time(name="utc_time", value=core.UTCTime(utc))
    return x509.Time(name="general_time", value=core.GeneralizedTime(utc))


def _tbs(
    serial: int,
    algorithm: SignatureAlgorithm,
    issuer: x509.Name,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    spki: keys.PublicKeyInfo,
    extensions: list[x509.Extension],
) -> bytes:
    if not 0 < serial < _MAX_SERIAL:
        raise ContentError("serial must be a positive integer below 2**159")
    if _der.as_utc(not_after) <= _der.as_utc(not_before):
        raise ContentError("not_after must be later than not_before")
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": x509.SignedDigestAlgorithm.load(algorithm.algorithm_identifier_der),
            "issuer": issuer,
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": subject,
            "subject_public_key_info": spki,
            "extensions": extensions,
        }
    )
    der: bytes = tbs.dump()
    return der


#: id-kp-timeStamping, RFC 5280.
TIME_STAMPING = "1.3.6.1.5.5.7.3.8"


def prepare_tsa_certificate(
    public_key_der: bytes,
    *,
    issuer_certificate_der: bytes,
    common_name: str,
    organization: str,
    not_before: datetime,
    not_after: datetime,
    serial: int,
) -> PendingCertificate:
    """A time-stamping authority's certificate: end entity, digitalSignature, and the
    critical extendedKeyUsage timeStamping alone that RFC 3161 §2.3 requires."""
    issuer = _load(issuer_certificate_der)
    issuer_tbs = issuer["tbs_certificate"]
    if not issuer.ca:
        raise ContentError("issuer certificate is not a CA")
    load_public_key(public_key_der)
    spki = _spki(public_key_der)
    issuer_ski = issuer.key_identifier or _key_identifier(issuer_tbs["subject_public_key_info"])
    subject = _name(
        [
            ("country_name", _printable("CN")),
            ("organization_name", _utf8(organization)),
            ("common_name", _utf8(common_name)),
        ]
    )
    extensions = [
        _extension("basic_constraints", {"ca": False}),
        _extension("key_usage", x509.KeyUsage({"digital_signature"}), critical=True),
        _extension("extended_key_usage", x509.ExtKeyUsageSyntax([TIME_STAMPING]), critical=True),
        _extension("key_identifier", core.OctetString(_key_identifier(spki))),
        _extension("authority_key_identifier", {"key_identifier": issuer_ski}),
    ]
    issuer_key = load_public_key(issuer_tbs["subject_public_key_info"].dump())
    algorithm = signature_algorithm_of(issuer_key)
    tbs = _tbs(
        serial, algorithm, issuer_tbs["subject"], subject, not_before, not_after, spki, extensions
    )
    return PendingCertificate(tbs, algorithm, issuer_tbs["subject_public_key_info"].dump())

"""The attributes of a sealed proof: their OIDs in both proof formats, and how they parse.

sealgate's own signed attributes (verification code, seal id, endorsement) first lived
under the X.667 UUID arc ``LEGACY_ARC`` (2.25.<uuid>). Its second arc is a 128-bit
number, past what libtasn1 (GnuTLS: 64 bits) and many toolkits (32 bits) parse, so
``certtool --p7-info`` refused every proof. Proofs are now sealed under ``ARC``, whose
every arc is below 2^31 (a signed 32-bit integer holds it); the legacy OIDs stay
readable so that proofs already issued keep verifying (docs/design.md §5.1).

``ARC`` is a Private Enterprise Number arc (1.3.6.1.4.1.N) that is **provisional**:
IANA has not assigned N to the city. Before production the operator registers a PEN
and replaces N here (a third format, the two before it still readable).

The two formats differ only in these OIDs and in one attribute: a current proof also
carries signing-certificate-v2 (RFC 5035; CAdES-B-B, ETSI EN 319 122-1 §5.2.2.3),
which binds the signature to the seal certificate's hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core, x509
from asn1crypto import tsp as _tsp  # registers signing_certificate_v2 with cms

from sealgate.crypto.errors import MalformedProof

__all__ = [
    "ARC",
    "LEGACY_ARC",
    "OID_SIGNATURE_TIME_STAMP_TOKEN",
    "OID_SIGNING_CERTIFICATE_V2",
    "AttributeNames",
    "ProofFormat",
    "check_signing_certificate",
    "private_oids",
    "proof_format_of",
    "timestamp_token",
]

#: The X.667 UUID arc of the first proofs (read, never sealed any more).
LEGACY_ARC = "2.25.227244376699152950896079126569910947090"
#: The arc proofs are sealed under: 1.3.6.1.4.1.<provisional PEN>, every arc < 2^31.
ARC = "1.3.6.1.4.1.2025120725"

#: id-aa-signingCertificateV2 (RFC 5035 §5.4).
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
#: id-aa-signatureTimeStampToken (RFC 3161 Appendix A): the one unsigned attribute allowed.
OID_SIGNATURE_TIME_STAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"  # noqa: S105 - an OID


class ProofFormat(enum.Enum):
    """Which attribute set a proof was sealed with."""

    LEGACY = 1  # UUID arc, no signing-certificate-v2
    CADES = 2  # ARC, with signing-certificate-v2 (CAdES-B-B)

    @property
    def arc(self) -> str:
        return LEGACY_ARC if self is ProofFormat.LEGACY else ARC

    @property
    def names(self) -> AttributeNames:
        return _NAMES[self]


@dataclass(frozen=True, slots=True)
class AttributeNames:
    """The asn1crypto names of one format's private attributes."""

    code: str
    seal_id: str
    endorsement: str


_NAMES = {
    ProofFormat.LEGACY: AttributeNames(
        "sealgate_legacy_verification_code",
        "sealgate_legacy_seal_id",
        "sealgate_legacy_endorsement",
    ),
    ProofFormat.CADES: AttributeNames(
        "sealgate_verification_code", "sealgate_seal_id", "sealgate_endorsement"
    ),
}


def private_oids(proof_format: ProofFormat) -> tuple[str, str, str]:
    """(verification code, seal id, endorsement) OIDs of a format."""
    arc = proof_format.arc
    return f"{arc}.1.1", f"{arc}.1.2", f"{arc}.1.3"


class EndorsementAsn1(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("extracting_unit", core.UTF8String, {"explicit": 0, "optional": True}),
        ("verifying_unit", core.UTF8String, {"explicit": 1, "optional": True}),
        ("extracted_at", core.GeneralizedTime, {"explicit": 2, "optional": True}),
    ]


class SetOfUTF8String(core.SetOf):  # type: ignore[misc]
    _child_spec = core.UTF8String


class SetOfEndorsement(core.SetOf):  # type: ignore[misc]
    _child_spec = EndorsementAsn1


def _register() -> None:
    """Teach asn1crypto both formats' private attributes, so parsing yields typed values."""
    assert _tsp.SigningCertificateV2  # the import registered it
    for proof_format in ProofFormat:
        names = proof_format.names
        code, seal_id, endorsement = private_oids(proof_format)
        for dotted, name, spec in (
            (code, names.code, SetOfUTF8String),
            (seal_id, names.seal_id, SetOfUTF8String),
            (endorsement, names.endorsement, SetOfEndorsement),
        ):
            cms.CMSAttributeType._map[dotted] = name
            cms.CMSAttribute._oid_specs[name] = spec
    cms.CMSAttributeType._reverse_map = None  # rebuilt lazily with our names


_register()


# --- what a proof must carry --------------------------------------------------------

_COMMON = ("content_type", "message_digest", "signing_time")
_REQUIRED = {
    ProofFormat.LEGACY: frozenset(
        {*_COMMON, _NAMES[ProofFormat.LEGACY].code, _NAMES[ProofFormat.LEGACY].seal_id}
    ),
    ProofFormat.CADES: frozenset(
        {
            *_COMMON,
            "signing_certificate_v2",
            _NAMES[ProofFormat.CADES].code,
            _NAMES[ProofFormat.CADES].seal_id,
        }
    ),
}


def proof_format_of(names: Collection[str]) -> ProofFormat:
    """The format whose exact signed-attribute set ``names`` is (the endorsement optional);
    anything else, a mix of both formats' attributes included, is a MalformedProof."""
    present = set(names)
    for proof_format, required in _REQUIRED.items():
        extra = present - required - {proof_format.names.endorsement}
        if required <= present and not extra:
            return proof_format
    for proof_format, required in _REQUIRED.items():
        if _NAMES[proof_format].code in present:
            missing = required - present
            extra = present - required - {proof_format.names.endorsement}
            what = f"missing {sorted(missing)}" if missing else f"unexpected {sorted(extra)}"
            raise MalformedProof(f"signed attributes: {what}")
    raise MalformedProof("signed attributes: no verification code")


def check_signing_certificate(value: Any, certificate_der: bytes) -> None:
    """``value`` (a parsed SigningCertificateV2) must name exactly ``certificate_der``:
    one ESSCertIDv2, SHA-256, its hash, and (if given) its issuer and serial number."""
    certs = value["certs"]
    if len(certs) != 1 or not isinstance(value["policies"], core.Void):
        raise MalformedProof("signing-certificate-v2 must name exactly the seal certificate")
    cert_id = certs[0]
    if cert_id["hash_algorithm"]["algorithm"].native != "sha256":
        raise MalformedProof("signing-certificate-v2 hash is not SHA-256")
    digest = hashlib.sha256(certificate_der).digest()
    if not hmac.compare_digest(cert_id["cert_hash"].native, digest):
        raise MalformedProof("signing-certificate-v2 names another certificate")
    issuer_serial = cert_id["issuer_serial"]
    if isinstance(issuer_serial, core.Void):
        return
    certificate = x509.Certificate.load(certificate_der)
    names = issuer_serial["issuer"]
    if (
        len(names) != 1
        or names[0].name != "directory_name"
        or names[0].chosen.untag().dump() != certificate.issuer.dump()
        or issuer_serial["serial_number"].native != certificate.serial_number
    ):
        raise MalformedProof("signing-certificate-v2 names another issuer or serial number")


def timestamp_token(unsigned_attrs: Any) -> bytes | None:
    """The DER of the signature time-stamp token, the one unsigned attribute allowed
    (RFC 3161 Appendix A, added by the sealing gateway's TSA client); ``None`` without
    one. Any other unsigned attribute is refused: no signature covers them, so a proof
    carrying one is not the proof that was sealed."""
    if isinstance(unsigned_attrs, core.Void):
        return None
    if len(unsigned_attrs) != 1:
        raise MalformedProof("unsigned attributes: only one signature time-stamp token allowed")
    attribute = unsigned_attrs[0]
    dotted = attribute["type"].dotted
    if dotted != OID_SIGNATURE_TIME_STAMP_TOKEN:
        raise MalformedProof(f"unexpected unsigned attribute {dotted}")
    values = attribute["values"]
    if len(values) != 1:
        raise MalformedProof("the signature time-stamp attribute must have exactly one value")
    token: bytes = values[0].dump()
    return token

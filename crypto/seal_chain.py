"""Does a seal certificate chain to the city root, and is it a seal? Pure and memoised.

The checks on the pair (seal certificate, trusted root) that
:mod:`sealgate.crypto.verification` makes for every proof: issued by the root, the root a
CA that may sign certificates, the seal an end-entity X.509 v3 certificate for document
signing with no critical extension it does not understand, naming its unit. The validity
window is the intersection of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtensionOID, NameOID

from sealgate.crypto.certificates import DOCUMENT_SIGNING
from sealgate.crypto.errors import UntrustedSeal

__all__ = ["SealFacts", "seal_facts"]

_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
_DOCUMENT_SIGNING = x509.ObjectIdentifier(DOCUMENT_SIGNING)
_UNDERSTOOD_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)


@dataclass(frozen=True, slots=True)
class SealFacts:
    """What a proof's checker learns from a seal certificate that chains to the root."""

    unit_name: str
    unit_code: str
    seal_id: str | None
    not_before: datetime
    not_after: datetime


_FACTS_CACHE: dict[tuple[bytes, bytes], SealFacts] = {}
_FACTS_CACHE_SIZE = 1024


def seal_facts(
    seal_der: bytes, root_der: bytes, seal: x509.Certificate, root: x509.Certificate
) -> SealFacts:
    """Chain checks, memoised on the exact DER pair: one seal signs thousands of proofs.

    Only successes are cached; the result depends on nothing but the two DERs.
    """
    key = (seal_der, root_der)
    facts = _FACTS_CACHE.get(key)
    if facts is None:
        facts = _check_chain(seal, root)
        if len(_FACTS_CACHE) >= _FACTS_CACHE_SIZE:
            _FACTS_CACHE.clear()
        _FACTS_CACHE[key] = facts
    return facts


def _check_chain(seal: x509.Certificate, root: x509.Certificate) -> SealFacts:
    try:
        seal.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise UntrustedSeal("seal certificate was not issued by the trusted root") from exc
    try:
        _check_root(root)
        return _check_seal(seal, root)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise UntrustedSeal(f"seal certificate unusable: {exc}") from exc


def _check_root(root: x509.Certificate) -> None:
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise UntrustedSeal("trusted root is not a CA")
    try:
        usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise UntrustedSeal("trusted root may not sign certificates")


def _check_seal(seal: x509.Certificate, root: x509.Certificate) -> SealFacts:
    if seal.version is not x509.Version.v3:
        raise UntrustedSeal("seal certificate is not X.509 v3")
    extensions = seal.extensions
    for extension in extensions:
        if extension.critical and extension.oid not in _UNDERSTOOD_EXTENSIONS:
            raise UntrustedSeal(f"unknown critical extension {extension.oid.dotted_string}")
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise UntrustedSeal("a CA certificate is not a seal")
    except x509.ExtensionNotFound:
        pass
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    if not (usage.digital_signature or usage.content_commitment):
        raise UntrustedSeal("seal key usage allows neither digitalSignature nor nonRepudiation")
    if _DOCUMENT_SIGNING not in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value:
        raise UntrustedSeal("seal certificate lacks the documentSigning EKU")
    return SealFacts(
        unit_name=_single(seal.subject, NameOID.ORGANIZATION_NAME, "unit name (O)"),
        unit_code=_single(seal.subject, _ORGANIZATION_IDENTIFIER, "unit code"),
        seal_id=_optional(seal.subject, NameOID.SERIAL_NUMBER),
        not_before=max(seal.not_valid_before_utc, root.not_valid_before_utc),
        not_after=min(seal.not_valid_after_utc, root.not_valid_after_utc),
    )


def _single(name: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    value = _optional(name, oid)
    if value is None:
        raise UntrustedSeal(f"seal certificate subject lacks exactly one {label}")
    return value


def _optional(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attributes = name.get_attributes_for_oid(oid)
    if len(attributes) != 1 or not isinstance(attributes[0].value, str):
        return None
    return attributes[0].value

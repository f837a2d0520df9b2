"""Verification of sealed proofs: pure, offline, and exception-driven.

:func:`verify_proof` either returns a :class:`VerifiedProof` or raises one
:class:`~sealgate.crypto.errors.ProofError` subclass naming the first check that failed.
It proves who signed what; when, and whether the key still sealed then, is
:mod:`sealgate.crypto.assessment`'s. Revocation is not consulted here either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sealgate.crypto import _der
from sealgate.crypto import proof as _proof
from sealgate.crypto.algorithms import is_high_s
from sealgate.crypto.attributes import (
    ProofFormat,
    check_signing_certificate,
    proof_format_of,
    timestamp_token,
)
from sealgate.crypto.errors import (
    BadSignature,
    ContentError,
    DigestMismatch,
    MalformedProof,
    ProofError,
    SealNotValidAtSigningTime,
    UntrustedSeal,
)
from sealgate.crypto.proof import Endorsement
from sealgate.crypto.seal_chain import SealFacts, seal_facts

__all__ = ["MAX_PROOF_SIZE", "TrustList", "VerifiedProof", "signed_parts", "verify_proof"]

#: Proofs are a few KiB; refuse anything that could only be an attack on the parser.
MAX_PROOF_SIZE = 1 << 20

_SHA256 = "2.16.840.1.101.3.4.2.1"
_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_RSA_SIGNATURE_OIDS = frozenset({"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11"})


def _oid_contents(dotted: str) -> bytes:
    contents: bytes = core.ObjectIdentifier(dotted).contents
    return contents


# OIDs are compared by their encoded contents: asn1crypto's ``.dotted`` costs µs each.
_RAW = {
    name: _oid_contents(dotted)
    for name, dotted in {
        "signed_data": _proof.OID_SIGNED_DATA,
        "data": _proof.OID_DATA,
        "sha256": _SHA256,
    }.items()
}
_SIGNATURE_OIDS = {
    _oid_contents(dotted): dotted for dotted in (_ECDSA_SHA256, *_RSA_SIGNATURE_OIDS)
}
# Everything asn1crypto, cryptography or the stdlib may raise on hostile bytes.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    UnsupportedAlgorithm,
)


@dataclass(frozen=True)
class TrustList:
    """The root certificates a verifier trusts, matched by exact DER, never by name."""

    roots: tuple[bytes, ...]
    _by_der: Mapping[bytes, x509.Certificate] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        by_der: dict[bytes, x509.Certificate] = {}
        for der in self.roots:
            try:
                by_der[bytes(der)] = x509.load_der_x509_certificate(der)
            except ValueError as exc:
                raise ContentError("trust list entry is not a DER certificate") from exc
        object.__setattr__(self, "roots", tuple(by_der))
        object.__setattr__(self, "_by_der", MappingProxyType(by_der))

    @classmethod
    def from_der(cls, roots: Iterable[bytes]) -> TrustList:
        """Trust these DER certificates."""
        return cls(tuple(roots))

    @classmethod
    def from_pem(cls, pem: str | bytes) -> TrustList:
        """Trust every certificate in a PEM bundle."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ContentError("not a PEM certificate bundle") from exc
        return cls(tuple(c.public_bytes(serialization.Encoding.DER) for c in certs))

    def certificate(self, der: bytes) -> x509.Certificate | None:
        """The trusted root with exactly this DER, if any."""
        return self._by_der.get(der)

    def issuers_named(self, name_der: bytes) -> list[bytes]:
        """The trusted roots (DER) whose subject is this DER name; several after a re-key."""
        return [
            der for der, cert in self._by_der.items() if cert.subject.public_bytes() == name_der
        ]


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a valid proof says, and which seal said it.

    ``signed_attributes`` (the DER SET OF that the signature covers) and ``content`` are
    what makes a proof the one registered: two encodings of one signature, or unsigned
    bytes added, leave them alone. ``timestamp_token`` (DER ContentInfo, unchecked here)
    and ``signature`` are what a timestamp check needs (it covers the signature's octets).
    """

    content: bytes
    code: str
    seal_id: str
    endorsement: Endorsement | None
    signing_time: datetime
    seal_certificate_der: bytes
    unit_name: str
    unit_code: str
    proof_format: ProofFormat
    signed_attributes: bytes
    signature: bytes
    timestamp_token: bytes | None


def signed_parts(der: bytes) -> tuple[bytes, bytes]:
    """The content and the signed attributes (DER SET OF) of a proof, which make it the
    proof it is, without checking its signature: for comparing with a registered one."""
    parsed = _parse(der)
    return parsed.content, parsed.signed_attrs_der


def verify_proof(der: bytes, trust: TrustList) -> VerifiedProof:
    """Verify a sealed proof against ``trust``; raise a :class:`ProofError` if it fails.

    Fails closed: whatever a library raises on hostile input ends as MalformedProof.
    """
    try:
        return _verify_proof(der, trust)
    except ProofError:
        raise
    except Exception as exc:  # a library's unexpected complaint about the input
        raise MalformedProof(f"not a sealed proof: {type(exc).__name__}") from exc


def _verify_proof(der: bytes, trust: TrustList) -> VerifiedProof:
    """Verify a sealed proof against ``trust``; raise the first failing check's error.

    Order: structure (MalformedProof) → message digest (DigestMismatch) → content
    type → signature (BadSignature) → chain, key usage, EKU (UntrustedSeal) →
    signing time within seal and root validity (SealNotValidAtSigningTime).
    """
    parsed = _parse(der)
    if not hmac.compare_digest(parsed.message_digest, hashlib.sha256(parsed.content).digest()):
        raise DigestMismatch("content does not match the signed message-digest")
    if not parsed.content_type_is_data:
        raise MalformedProof("content-type attribute does not match the content")
    seal_der, root_copy = _split_certificates(parsed)
    if parsed.signing_certificate is not None:
        check_signing_certificate(parsed.signing_certificate, seal_der)
    seal = _load_certificate(seal_der)
    _verify_signature(seal, parsed)
    if root_copy is not None and trust.certificate(root_copy) is None:
        raise UntrustedSeal("the root certificate in the proof is not a trusted root")
    facts = _chain_to_trust(seal_der, seal, trust, root_copy)
    if facts.seal_id is not None and parsed.seal_id != facts.seal_id:
        raise UntrustedSeal(f"proof names seal {parsed.seal_id!r}, certificate {facts.seal_id!r}")
    when = parsed.signing_time
    if not (facts.not_before <= when <= facts.not_after):
        raise SealNotValidAtSigningTime(f"signing time {when.isoformat()} outside validity")
    return VerifiedProof(
        content=parsed.content,
        code=parsed.code,
        seal_id=parsed.seal_id,
        endorsement=parsed.endorsement,
        signing_time=when,
        seal_certificate_der=seal_der,
        unit_name=facts.unit_name,
        unit_code=facts.unit_code,
        proof_format=parsed.proof_format,
        signed_attributes=parsed.signed_attrs_der,
        signature=parsed.signature,
        timestamp_token=parsed.timestamp_token,
    )


# --- parsing ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    content: bytes
    signed_attrs_der: bytes
    content_type_is_data: bool
    message_digest: bytes
    signing_time: datetime
    code: str
    seal_id: str
    endorsement: Endorsement | None
    signature_algorithm: str
    signature: bytes
    proof_format: ProofFormat
    signing_certificate: Any  # SigningCertificateV2, None in the legacy format
    timestamp_token: bytes | None
    sid_issuer_der: bytes
    sid_serial: int
    certificates: tuple[bytes, ...]


def _parse(der: bytes) -> _Parsed:
    """Every structural check; any library error becomes :class:`MalformedProof`."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise MalformedProof("proof must be bytes")
    if len(der) > MAX_PROOF_SIZE:
        raise MalformedProof(f"proof larger than {MAX_PROOF_SIZE} bytes")
    try:
        _der.check_der_lengths(bytes(der))
    except ValueError as exc:
        raise MalformedProof(f"not DER: {exc}") from None
    try:
        return _parse_unchecked(bytes(der))
    except MalformedProof:
        raise
    except _PARSE_ERRORS as exc:
        raise MalformedProof(f"not a sealed proof: {type(exc).__name__}: {exc}") from exc


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise MalformedProof(message)


def _parse_unchecked(der: bytes) -> _Parsed:
    info = cms.ContentInfo.load(der, strict=True)
    _require(info["content_type"].contents == _RAW["signed_data"], "not SignedData")
    signed_data = info["content"]
    _require(signed_data["version"].native == "v1", "SignedData version is not 1")
    algorithms = signed_data["digest_algorithms"]
    _require(len(algorithms) == 1 and _is_sha256(algorithms[0]), "digest is not SHA-256 only")
    encap = signed_data["encap_content_info"]
    _require(encap["content_type"].contents == _RAW["data"], "content type is not id-data")
    _require(
        isinstance(encap["content"], core.OctetString | core.ParsableOctetString),
        "content is not attached",
    )
    content = encap["content"].native
    _require(isinstance(content, bytes), "content is not attached")

    certificates = signed_data["certificates"]
    _require(not isinstance(certificates, core.Void), "no certificates")
    cert_ders = []
    for choice in certificates:
        _require(choice.name == "certificate", "unexpected certificate type")
        # A signature is whole octets. cryptography reads a BIT STRING that claims unused
        # bits (all zero) as the same signature, so that byte, which no signature covers,
        # could change and the proof still verify; OpenSSL refuses it too.
        _require(
            choice.chosen["signature_value"].contents[:1] == b"\x00",
            "certificate signature has unused bits",
        )
        cert_ders.append(choice.chosen.dump())

    signer_infos = signed_data["signer_infos"]
    _require(len(signer_infos) == 1, "exactly one SignerInfo expected")
    signer = signer_infos[0]
    _require(signer["version"].native == "v1", "SignerInfo version is not 1")
    sid = signer["sid"]
    _require(sid.name == "issuer_and_serial_number", "sid is not issuerAndSerialNumber")
    _require(_is_sha256(signer["digest_algorithm"]), "SignerInfo digest is not SHA-256")
    signature_algorithm = signer["signature_algorithm"]
    sig_oid = _SIGNATURE_OIDS.get(signature_algorithm["algorithm"].contents, "unsupported")
    parameters = signature_algorithm["parameters"]
    if sig_oid == _ECDSA_SHA256:
        _require(isinstance(parameters, core.Void), "ECDSA parameters must be absent")
    else:
        _require(sig_oid in _RSA_SIGNATURE_OIDS, f"unsupported signature algorithm {sig_oid}")
        _require(isinstance(parameters, core.Void | core.Null), "RSA parameters must be NULL")

    signed_attrs = signer["signed_attrs"]
    _require(not isinstance(signed_attrs, core.Void), "no signed attributes")
    proof_format, attributes = _attributes(signed_attrs)
    names = proof_format.names
    body = signed_attrs.contents
    endorsement = attributes.get(names.endorsement)
    return _Parsed(
        content=content,
        signed_attrs_der=_der_set(body),
        content_type_is_data=attributes["content_type"].contents == _RAW["data"],
        message_digest=attributes["message_digest"].native,
        signing_time=attributes["signing_time"].native,
        code=attributes[names.code].native,
        seal_id=attributes[names.seal_id].native,
        endorsement=None if endorsement is None else _endorsement(endorsement.native),
        signature_algorithm=sig_oid,
        signature=signer["signature"].native,
        proof_format=proof_format,
        signing_certificate=attributes.get("signing_certificate_v2"),
        timestamp_token=timestamp_token(signer["unsigned_attrs"]),
        sid_issuer_der=sid.chosen["issuer"].dump(),
        sid_serial=sid.chosen["serial_number"].native,
        certificates=tuple(cert_ders),
    )


def _attributes(signed_attrs: cms.CMSAttributes) -> tuple[ProofFormat, dict[str, Any]]:
    """Single-valued attributes by name, exactly one format's set (attributes.py);
    duplicates and unknown ones are refused."""
    found: dict[str, Any] = {}
    for attribute in signed_attrs:
        name = attribute["type"].native
        _require(name not in found, f"duplicate signed attribute {name}")
        values = attribute["values"]
        _require(len(values) == 1, f"attribute {name} must have exactly one value")
        found[name] = values[0]
    proof_format = proof_format_of(found)
    found["signing_time"] = found["signing_time"].chosen  # Time CHOICE
    _require(isinstance(found["message_digest"].native, bytes), "bad message-digest")
    _require(isinstance(found["signing_time"].native, datetime), "bad signing-time")
    return proof_format, found


def _endorsement(value: Mapping[str, Any]) -> Endorsement:
    return Endorsement(
        extracting_unit=value["extracting_unit"],
        verifying_unit=value["verifying_unit"],
        extracted_at=value["extracted_at"],
    )


def _is_sha256(algorithm: Any) -> bool:
    return bool(
        algorithm["algorithm"].contents == _RAW["sha256"]
        and isinstance(algorithm["parameters"], core.Void | core.Null)
    )


def _der_set(body: bytes) -> bytes:
    """Signed attributes are signed as an explicit SET OF (RFC 5652 §5.4), not as [0]."""
    n = len(body)
    if n < 0x80:
        return bytes((0x31, n)) + body
    size = (n.bit_length() + 7) // 8
    return bytes((0x31, 0x80 | size)) + n.to_bytes(size, "big") + body


# --- signature and chain ---------------------------------------------------------


def _load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise MalformedProof("certificate in proof is not DER") from exc


def _chain_to_trust(
    seal_der: bytes, seal: x509.Certificate, trust: TrustList, root_copy: bytes | None
) -> SealFacts:
    """The seal's facts once it chains to a trusted root (found by name, checked by key)."""
    try:
        issuer_name = seal.issuer.public_bytes()
    except ValueError as exc:
        raise MalformedProof("certificate name is malformed") from exc
    candidates = [root_copy] if root_copy is not None else trust.issuers_named(issuer_name)
    failure: UntrustedSeal | None = None
    for root_der in candidates:
        root = trust.certificate(root_der)
        if root is None:  # pragma: no cover - candidates come from the trust list
            continue
        try:
            return seal_facts(seal_der, root_der, seal, root)
        except UntrustedSeal as exc:
            failure = exc
    raise failure or UntrustedSeal("the seal's issuer is not a trusted root")


def _split_certificates(parsed: _Parsed) -> tuple[bytes, bytes | None]:
    """The seal certificate (found by issuer+serial) and, if the proof carries one, a root.

    sealgate's proofs carry only the seal certificate: the root is the trust anchor and a
    copy in the proof would be bytes no signature covers. A copy, if present, must be
    byte-identical to a trusted root.
    """
    _require(1 <= len(parsed.certificates) <= 2, "certificates must be the seal (and its root)")
    seal_der = root_der = None
    for der in parsed.certificates:
        cert = _load_certificate(der)
        try:
            issuer = cert.issuer.public_bytes()
        except ValueError as exc:
            raise MalformedProof("certificate name is malformed") from exc
        if cert.serial_number == parsed.sid_serial and issuer == parsed.sid_issuer_der:
            # Two certificates with the signer's issuer and serial: which one signed is
            # the toolkit's guess (OpenSSL refuses such a proof), so refuse it too.
            _require(seal_der is None, "more than one certificate matches the signer")
            seal_der = der
        else:
            root_der = der
    if seal_der is None:
        raise MalformedProof("the signer's certificate is not in the proof")
    return seal_der, root_der


def _verify_signature(seal: x509.Certificate, parsed: _Parsed) -> None:
    try:
        key = seal.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedProof("seal certificate public key is malformed") from exc
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if parsed.signature_algorithm != _ECDSA_SHA256:
                raise BadSignature("signature algorithm does not match the EC seal key")
            # The first proofs were sealed with either S; since signing-certificate-v2
            # came in, only the low one (algorithms.low_s_signature).
            if parsed.proof_format is ProofFormat.CADES and _high_s(parsed.signature):
                raise MalformedProof("ECDSA signature has a high S: not as sealed")
            key.verify(parsed.signature, parsed.signed_attrs_der, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            if parsed.signature_algorithm not in _RSA_SIGNATURE_OIDS:
                raise BadSignature("signature algorithm does not match the RSA seal key")
            key.verify(
                parsed.signature, parsed.signed_attrs_der, padding.PKCS1v15(), hashes.SHA256()
            )
        else:
            raise BadSignature("seal key type is not supported")
    except InvalidSignature as exc:
        raise BadSignature("signature does not verify with the seal certificate") from exc


def _high_s(signature: bytes) -> bool:
    try:
        return is_high_s(signature)
    except ValueError as exc:
        raise BadSignature("ECDSA signature is not a DER ECDSA-Sig-Value") from exc

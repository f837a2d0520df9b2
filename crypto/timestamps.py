"""RFC 3161 signature timestamps on sealed proofs (CAdES-B-T): pure and I/O-free.

A proof's SignerInfo carries, as its one unsigned attribute, an
id-aa-signatureTimeStampToken (RFC 5126 / ETSI EN 319 122-1 §5.3) whose message imprint
is the SHA-256 of the signature value (RFC 3161 Appendix A): a TSA's word that the
signature existed at the token's ``genTime``. Checks then judge the seal certificate at
that time, not at the signing time the signer wrote itself
(:func:`sealgate.crypto.assessment.assess`).

The seams other modules use:

- sealing: :func:`timestamp_request` (the query for one signature), then
  :func:`read_response` (the TSA's answer checked: status, nonce, imprint, the token's
  signature and its TSA's chain), then :func:`signature_timestamp_attributes` (the
  ``[1] unsignedAttrs`` DER that :meth:`sealgate.crypto.proof.PendingProof.finish` embeds);
- checking: :func:`timestamp_check` (given the TSA roots, the ``timestamp=`` check that
  :func:`~sealgate.crypto.assessment.assess` takes: the token of a verified proof
  checked over its signature, the time it vouches for), :func:`verify_token` (one token).

TSAs are trusted through their own :class:`~sealgate.crypto.verification.TrustList` of
roots (never the city root's: a seal certificate is not a TSA, nor the other way round).
A TSA certificate is trusted when it is one of those roots or issued directly by one, and
has the critical extendedKeyUsage timeStamping alone (RFC 3161 §2.3).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from sealgate.crypto import _der
from sealgate.crypto._tokens import (
    OID_CONTENT_TYPE,
    OID_MESSAGE_DIGEST,
    OID_SIGNING_CERTIFICATE,
    OID_SIGNING_CERTIFICATE_V2,
    TokenParts,
    ess_certificate_hash,
    read_token,
    split_response,
)
from sealgate.crypto.algorithms import SHA256_DER
from sealgate.crypto.attributes import OID_SIGNATURE_TIME_STAMP_TOKEN
from sealgate.crypto.errors import BadTimestamp, TimestampRefused

if TYPE_CHECKING:
    from sealgate.crypto.verification import TrustList, VerifiedProof

__all__ = [
    "Timestamp",
    "has_signature_timestamp",
    "read_response",
    "signature_timestamp_attributes",
    "timestamp_check",
    "timestamp_request",
    "verify_token",
]

OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"

_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_TST_INFO_VALUE = _der.oid(OID_TST_INFO)
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A verified signature timestamp: when, by which TSA, under which policy."""

    gen_time: datetime
    serial: int
    policy: str
    tsa_certificate_der: bytes
    tsa_name: str
    token_der: bytes


# --- asking ---------------------------------------------------------------------------


def timestamp_request(signature: bytes, nonce: int) -> bytes:
    """The DER TimeStampReq for one signature value: version 1, SHA-256 imprint of
    ``signature``, ``nonce``, certReq TRUE (the token carries the TSA certificate, so a
    proof checks with the TSA's root alone)."""
    if not 0 < nonce < 1 << 64:
        raise ValueError("nonce must be a positive 64-bit integer")
    imprint = _der.tlv(
        _der.SEQUENCE,
        SHA256_DER + _der.tlv(_der.OCTET_STRING, hashlib.sha256(signature).digest()),
    )
    nonce_der = _der.tlv(0x02, nonce.to_bytes(9, "big").lstrip(b"\x00") or b"\x00")
    if nonce_der[2] & 0x80:  # INTEGER is signed: keep it positive
        nonce_der = _der.tlv(0x02, b"\x00" + nonce_der[2:])
    return _der.tlv(_der.SEQUENCE, b"\x02\x01\x01" + imprint + nonce_der + b"\x01\x01\xff")


def read_response(
    response_der: bytes, *, signature: bytes, nonce: int, trust: TrustList
) -> Timestamp:
    """The token of a TSA's TimeStampResp to :func:`timestamp_request` (``signature``,
    ``nonce``), verified against ``trust``. A refusal is :class:`TimestampRefused`, a
    token that does not verify (or answers another request) :class:`BadTimestamp`."""
    status, token = split_response(response_der)
    if status not in (0, 1):  # granted, grantedWithMods
        raise TimestampRefused(f"the TSA refused: {_refusal(response_der)}")
    if token is None:
        raise BadTimestamp("the TSA granted but sent no token")
    stamp, parts = _verify(token, signature, trust)
    if parts.tst.nonce != nonce:
        raise BadTimestamp("the token answers another request (nonce)")
    return stamp


def _refusal(response_der: bytes) -> str:
    """What a refusal says (status, failure bits, text), for the log and the 503."""
    try:
        status = _TimeStampResp.load(response_der)["status"]
        detail = status["fail_info"].native or ""
        return f"{status['status'].native} {detail} {status['status_string'].native or ''}"
    except _PARSE_ERRORS:
        return "a refusal that cannot be read"


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161's TimeStampResp, whose token is OPTIONAL (asn1crypto's requires it)."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


# --- embedding ------------------------------------------------------------------------


def signature_timestamp_attributes(token_der: bytes) -> bytes:
    """``unsignedAttrs [1] IMPLICIT SET OF Attribute`` holding the one
    id-aa-signatureTimeStampToken: what follows the signature in the SignerInfo."""
    attribute = _der.tlv(_der.SEQUENCE, _TOKEN_OID_DER + _der.tlv(_der.SET, token_der))
    return _der.tlv(0xA1, attribute)


_TOKEN_OID_DER = _der.oid(OID_SIGNATURE_TIME_STAMP_TOKEN)


# --- checking -------------------------------------------------------------------------


def has_signature_timestamp(proof_der: bytes) -> bool:
    """Whether a proof's SignerInfo carries a signature timestamp (not whether it verifies:
    :func:`verify_token` says that)."""
    try:
        signer = cms.ContentInfo.load(proof_der)["content"]["signer_infos"][0]
        unsigned = signer["unsigned_attrs"]
        if isinstance(unsigned, core.Void):
            return False
        return any(a["type"].dotted == OID_SIGNATURE_TIME_STAMP_TOKEN for a in unsigned)
    except _PARSE_ERRORS as exc:
        raise BadTimestamp(f"not a sealed proof: {type(exc).__name__}") from exc


def timestamp_check(trust: TrustList) -> Callable[[VerifiedProof], datetime]:
    """The timestamp check :func:`sealgate.crypto.assessment.assess` takes: a proof's
    signature timestamp token verified over its signature against the TSA roots in
    ``trust``, giving the time it vouches for (:class:`BadTimestamp` if it does not)."""

    def check(proof: VerifiedProof) -> datetime:
        if proof.timestamp_token is None:
            raise BadTimestamp("the proof has no signature timestamp")
        return verify_token(proof.timestamp_token, proof.signature, trust).gen_time

    return check


def verify_token(token_der: bytes, stamped: bytes, trust: TrustList) -> Timestamp:
    """Verify a TimeStampToken over the octets ``stamped`` (a signature value) against
    the TSA roots in ``trust``; raises :class:`BadTimestamp` naming the first failure."""
    return _verify(token_der, stamped, trust)[0]


def _verify(token_der: bytes, stamped: bytes, trust: TrustList) -> tuple[Timestamp, TokenParts]:
    try:
        return _verify_parts(token_der, stamped, trust)
    except BadTimestamp:
        raise
    except (*_PARSE_ERRORS, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise BadTimestamp(f"not a timestamp token: {type(exc).__name__}: {exc}") from exc


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadTimestamp(message)


def _verify_parts(
    token_der: bytes, stamped: bytes, trust: TrustList
) -> tuple[Timestamp, TokenParts]:
    parts = read_token(token_der)
    info = parts.tst
    algorithm = info.imprint_algorithm
    _require(algorithm in _HASHES, "unsupported imprint hash")
    _require(
        hmac.compare_digest(info.imprint, hashlib.new(algorithm, stamped).digest()),
        "the timestamp is over other data than this signature",
    )
    signer = _signer_certificate(parts)
    digest_name = parts.digest_algorithm
    _require(digest_name in _HASHES, "unsupported token digest")
    attributes = parts.attributes
    _require(
        attributes.get(OID_CONTENT_TYPE) == _TST_INFO_VALUE,
        "token content-type attribute is not TSTInfo",
    )
    digest = attributes.get(OID_MESSAGE_DIGEST)
    expected_digest = _der.tlv(_der.OCTET_STRING, hashlib.new(digest_name, parts.tst_der).digest())
    _require(
        digest is not None and hmac.compare_digest(digest, expected_digest),
        "token message-digest does not match its TSTInfo",
    )
    _check_signing_certificate(attributes, signer.der)
    _check_signature(signer.certificate, parts, digest_name)
    tsa_name = _tsa_chain(signer.der, signer.certificate, trust, info.gen_time)
    stamp = Timestamp(
        gen_time=info.gen_time,
        serial=info.serial,
        policy=_dotted(info.policy_der),
        tsa_certificate_der=signer.der,
        tsa_name=tsa_name,
        token_der=token_der,
    )
    return stamp, parts


@dataclass(frozen=True, slots=True)
class _Signer:
    """A TSA certificate, parsed once: a TSA signs every token with the same one."""

    der: bytes
    certificate: x509.Certificate
    issuer_serial_der: bytes  # IssuerAndSerialNumber, as a SignerIdentifier names it
    key_identifier_der: bytes  # [0] subjectKeyIdentifier, likewise (or b"")


_SIGNERS: dict[bytes, _Signer] = {}
_POLICIES: dict[bytes, str] = {}
_CACHE_SIZE = 64


def _signer_certificate(parts: TokenParts) -> _Signer:
    """The token's certificate its signer id names (exactly one)."""
    _require(bool(parts.certificates), "the token carries no TSA certificate")
    matches = []
    for der in parts.certificates:
        signer = _SIGNERS.get(der)
        if signer is None:
            parsed = asn1_x509.Certificate.load(der, strict=True)
            tbs = parsed["tbs_certificate"]
            ski = parsed.key_identifier
            signer = _Signer(
                der=der,
                certificate=x509.load_der_x509_certificate(der),
                issuer_serial_der=_der.tlv(
                    _der.SEQUENCE, tbs["issuer"].dump() + tbs["serial_number"].dump()
                ),
                key_identifier_der=b"" if ski is None else _der.tlv(0x80, ski),
            )
            if len(_SIGNERS) >= _CACHE_SIZE:
                _SIGNERS.clear()
            _SIGNERS[der] = signer
        if parts.sid_der in (signer.issuer_serial_der, signer.key_identifier_der):
            matches.append(signer)
    _require(len(matches) == 1, "the token must carry exactly one certificate of its signer")
    return matches[0]


def _dotted(oid_contents: bytes) -> str:
    dotted = _POLICIES.get(oid_contents)
    if dotted is None:
        dotted = core.ObjectIdentifier.load(_der.tlv(0x06, oid_contents)).dotted
        if len(_POLICIES) >= _CACHE_SIZE:
            _POLICIES.clear()
        _POLICIES[oid_contents] = dotted
    return dotted


def _check_signing_certificate(attributes: Mapping[bytes, bytes], certificate_der: bytes) -> None:
    """ESS signing-certificate(-v2) (RFC 2634 / RFC 5035), which RFC 3161 §2.4.1 requires:
    its first certificate id names the signer's certificate."""
    v2 = attributes.get(OID_SIGNING_CERTIFICATE_V2)
    value = v2 if v2 is not None else attributes.get(OID_SIGNING_CERTIFICATE)
    if value is None:
        raise BadTimestamp("token lacks the ESS signing-certificate attribute")
    name, cert_hash = ess_certificate_hash(value, v2=v2 is not None)
    _require(name in (*_HASHES, "sha1"), f"unsupported ESS hash {name}")
    expected = hashlib.new(name, certificate_der).digest()
    _require(
        hmac.compare_digest(cert_hash, expected),
        "the ESS signing-certificate attribute names another certificate",
    )


# The signature algorithms a token may name, by key type and digest (RFC 5754, RFC 8017):
# exactly these DER encodings (ECDSA without parameters, RSA with NULL).
_EC_SIGNATURES = {
    name: _der.tlv(_der.SEQUENCE, _der.oid(f"1.2.840.10045.4.3.{n}"))
    for name, n in (("sha256", 2), ("sha384", 3), ("sha512", 4))
}
_RSA_ENCRYPTION = _der.tlv(_der.SEQUENCE, _der.oid("1.2.840.113549.1.1.1") + b"\x05\x00")
_RSA_SIGNATURES = {
    name: _der.tlv(_der.SEQUENCE, _der.oid(f"1.2.840.113549.1.1.{n}") + b"\x05\x00")
    for name, n in (("sha256", 11), ("sha384", 12), ("sha512", 13))
}


def _check_signature(certificate: x509.Certificate, parts: TokenParts, digest_name: str) -> None:
    key = certificate.public_key()
    algorithm = _HASHES[digest_name]()
    signature, signed = parts.signature, parts.signed_attrs_set
    named = parts.signature_algorithm_der
    if isinstance(key, ec.EllipticCurvePublicKey):
        _require(named == _EC_SIGNATURES[digest_name], "token signature algorithm is not ECDSA")
    else:
        _require(
            named in (_RSA_ENCRYPTION, _RSA_SIGNATURES[digest_name]),
            "token signature algorithm does not fit its key",
        )
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        else:
            raise BadTimestamp("unsupported TSA key type")
    except InvalidSignature as exc:
        raise BadTimestamp("the token's signature does not verify") from exc


# A TSA certificate, once checked against a trust list (everything but the time): a TSA
# signs every token with the same certificate.
_CHAINS: dict[tuple[bytes, tuple[bytes, ...]], tuple[str, datetime, datetime]] = {}


def _tsa_chain(der: bytes, certificate: x509.Certificate, trust: TrustList, when: datetime) -> str:
    """The TSA's name once its certificate is a trusted root or issued by one, for
    time-stamping alone, and valid (with its root) at ``when``."""
    key = (der, trust.roots)
    facts = _CHAINS.get(key)
    if facts is None:
        facts = _chain_facts(der, certificate, trust)
        if len(_CHAINS) >= _CACHE_SIZE:
            _CHAINS.clear()
        _CHAINS[key] = facts
    name, not_before, not_after = facts
    _require(
        not_before <= when <= not_after,
        f"the TSA certificate is not valid at the timestamp's time {when.isoformat()}",
    )
    return name


def _chain_facts(
    der: bytes, certificate: x509.Certificate, trust: TrustList
) -> tuple[str, datetime, datetime]:
    if trust.certificate(der) is not None:
        candidates = [der]
    else:
        candidates = trust.issuers_named(certificate.issuer.public_bytes())
    failure = "the TSA certificate does not chain to a trusted TSA root"
    for root_der in candidates:
        root = trust.certificate(root_der)
        if root is None:  # pragma: no cover - candidates come from the trust list
            continue
        try:
            return _check_tsa(certificate, root, root_der == der)
        except BadTimestamp as exc:
            failure = str(exc)
    raise BadTimestamp(failure)


def _check_tsa(
    certificate: x509.Certificate, root: x509.Certificate, self_trusted: bool
) -> tuple[str, datetime, datetime]:
    if not self_trusted:
        try:
            certificate.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
            raise BadTimestamp("the TSA certificate was not issued by a trusted TSA root") from exc
        try:
            if not root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise BadTimestamp("the TSA root is not a CA")
        except x509.ExtensionNotFound as exc:
            raise BadTimestamp("the TSA root is not a CA") from exc
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise BadTimestamp("the TSA certificate lacks the timeStamping EKU") from exc
    _require(
        eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING],
        "the TSA certificate's EKU must be timeStamping alone, critical (RFC 3161 §2.3)",
    )
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(names[0].value) if names else certificate.subject.rfc4514_string()
    return (
        name,
        max(certificate.not_valid_before_utc, root.not_valid_before_utc),
        min(certificate.not_valid_after_utc, root.not_valid_after_utc),
    )

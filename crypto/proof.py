"""The sealed proof: a DER CMS SignedData (RFC 5652) over canonical JSON.

Shape (what :mod:`sealgate.crypto.verification` accepts, nothing else)::

    ContentInfo { signedData, [0] SignedData {
      version 1, digestAlgorithms {sha256},
      encapContentInfo { id-data, [0] OCTET STRING <canonical JSON> },   -- attached
      certificates [0] { seal certificate, root certificate },
      signerInfos { SignerInfo {
        version 1, sid issuerAndSerialNumber, digestAlgorithm sha256,
        signedAttrs [0] { contentType, messageDigest, signingTime, signingCertificateV2,
                          verificationCode, sealId, endorsement? },
        signatureAlgorithm (from the seal key), signature (ECDSA: low S),
        unsignedAttrs [1] { signatureTimeStampToken }? } } } }   -- CAdES-B-T

The private attributes live under ``ARC`` (:mod:`sealgate.crypto.attributes`, which
also reads the first proofs' UUID arc). signingCertificateV2 (RFC 5035) names the seal
certificate by its hash, as CAdES-B-B asks. ``endorsement`` carries what 宁波 第十四条
asks the platform to endorse: the extracting unit, the verifying unit and the extraction
time::

    Endorsement ::= SEQUENCE {
      extractingUnit [0] EXPLICIT UTF8String OPTIONAL,
      verifyingUnit  [1] EXPLICIT UTF8String OPTIONAL,
      extractedAt    [2] EXPLICIT GeneralizedTime OPTIONAL }

Sealing is hot (thousands per second), so :class:`ProofSealer` precomputes all
per-seal encodings once and per proof only concatenates DER with the helpers in
:mod:`sealgate.crypto._der`; asn1crypto is used to parse (and in tests, to cross-check).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import tsp, x509

from sealgate.crypto import _der
from sealgate.crypto.algorithms import (
    SHA256_DER,
    PublicKey,
    SignatureAlgorithm,
    load_public_key,
    low_s_signature,
    signature_algorithm_of,
)
from sealgate.crypto.attributes import (
    ARC,
    OID_SIGNING_CERTIFICATE_V2,
    ProofFormat,
    private_oids,
)
from sealgate.crypto.errors import ContentError, SealCertificateNotValid

__all__ = [
    "ARC",
    "OID_ENDORSEMENT",
    "OID_SEAL_ID",
    "OID_VERIFICATION_CODE",
    "Endorsement",
    "PendingProof",
    "ProofSealer",
]

# The OIDs proofs are sealed with now (sealgate.crypto.attributes has both formats').
OID_VERIFICATION_CODE, OID_SEAL_ID, OID_ENDORSEMENT = private_oids(ProofFormat.CADES)

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"


@dataclass(frozen=True, slots=True)
class Endorsement:
    """Who extracted the proof, who verifies it, and when (宁波 第十四条)."""

    extracting_unit: str | None = None
    verifying_unit: str | None = None
    extracted_at: datetime | None = None

    def to_der(self) -> bytes:
        """The ``Endorsement`` SEQUENCE DER (times at whole seconds, UTC)."""
        body = b""
        if self.extracting_unit is not None:
            body += _der.tlv(0xA0, _der.utf8(self.extracting_unit))
        if self.verifying_unit is not None:
            body += _der.tlv(0xA1, _der.utf8(self.verifying_unit))
        if self.extracted_at is not None:
            body += _der.tlv(0xA2, _der.generalized_time(self.extracted_at))
        return _der.tlv(_der.SEQUENCE, body)


# --- constant encodings -----------------------------------------------------------

_SEQ, _SET = _der.SEQUENCE, _der.SET
_CONTENT_TYPE_ATTR = _der.tlv(_SEQ, _der.oid(OID_CONTENT_TYPE) + _der.tlv(_SET, _der.oid(OID_DATA)))
# messageDigest attribute: everything before the 32 digest octets is fixed.
_MESSAGE_DIGEST_ATTR = _der.tlv(
    _SEQ, _der.oid(OID_MESSAGE_DIGEST) + _der.tlv(_SET, _der.tlv(_der.OCTET_STRING, bytes(32)))
)
_MESSAGE_DIGEST_PREFIX = _MESSAGE_DIGEST_ATTR[:-32]
_SIGNING_TIME_OID = _der.oid(OID_SIGNING_TIME)
_VERIFICATION_CODE_OID = _der.oid(OID_VERIFICATION_CODE)
_SEAL_ID_OID = _der.oid(OID_SEAL_ID)
_ENDORSEMENT_OID = _der.oid(OID_ENDORSEMENT)
_SIGNING_CERTIFICATE_V2_OID = _der.oid(OID_SIGNING_CERTIFICATE_V2)
_VERSION_1 = b"\x02\x01\x01"
_ENCAP_TYPE = _der.oid(OID_DATA)
_CONTENT_INFO_TYPE = _der.oid(OID_SIGNED_DATA)
_DIGEST_ALGORITHMS = _der.tlv(_SET, SHA256_DER)


def _attribute(type_der: bytes, value_der: bytes) -> bytes:
    return _der.tlv(_SEQ, type_der + _der.tlv(_SET, value_der))


def signing_certificate_v2(certificate: x509.Certificate) -> bytes:
    """The SigningCertificateV2 value DER (RFC 5035) naming ``certificate`` by its SHA-256
    hash (the default algorithm, so omitted) and its issuer and serial number."""
    issuer_serial = tsp.IssuerSerial(
        {
            "issuer": [x509.GeneralName(name="directory_name", value=certificate.issuer)],
            "serial_number": certificate.serial_number,
        }
    )
    cert_id = tsp.ESSCertIDv2(
        {"cert_hash": hashlib.sha256(certificate.dump()).digest(), "issuer_serial": issuer_serial}
    )
    encoded: bytes = tsp.SigningCertificateV2({"certs": [cert_id]}).dump(force=True)
    return encoded


class ProofSealer:
    """Seals proofs with one seal certificate; build once per seal, reuse per proof.

    ``chain`` is the issuing root, embedded so a verifier needs only its trust list
    (:func:`sealgate.crypto.verification.verify_proof` requires exactly seal + root).
    Everything independent of the individual proof is encoded here, once.
    """

    __slots__ = (
        "_algorithm",
        "_key",
        "_seal_id",
        "_seal_id_attr",
        "_signed_data_head",
        "_signed_data_head_certs",
        "_signer_info_head",
        "_signer_info_sig_alg",
        "_signing_certificate_attr",
        "_signing_time",
        "_validity",
    )

    def __init__(self, seal_certificate_der: bytes, chain: Sequence[bytes] = ()) -> None:
        try:
            cert = x509.Certificate.load(seal_certificate_der, strict=True)
            tbs = cert["tbs_certificate"]
            issuer_der: bytes = tbs["issuer"].dump()
            serial_der: bytes = tbs["serial_number"].dump()
            spki_der: bytes = tbs["subject_public_key_info"].dump()
            seal_id = cert.subject.native.get("serial_number")
            signing_certificate = signing_certificate_v2(cert)
            validity = tbs["validity"]
            self._validity: tuple[datetime, datetime] = (
                validity["not_before"].native,
                validity["not_after"].native,
            )
            for other in chain:
                x509.Certificate.load(other, strict=True).subject.native  # noqa: B018
        except (ValueError, TypeError, KeyError) as exc:
            raise ContentError("not a DER certificate") from exc
        self._key: PublicKey = load_public_key(spki_der)
        self._algorithm: SignatureAlgorithm = signature_algorithm_of(self._key)
        self._seal_id: str | None = seal_id if isinstance(seal_id, str) else None
        self._seal_id_attr = (
            b"" if self._seal_id is None else _attribute(_SEAL_ID_OID, _der.utf8(self._seal_id))
        )
        self._signing_certificate_attr = _attribute(
            _SIGNING_CERTIFICATE_V2_OID, signing_certificate
        )
        # DER SET OF: elements sorted by their encodings (X.690 §11.6).
        certs = sorted({seal_certificate_der, *chain})
        certificate_set = _der.tlv(0xA0, b"".join(certs))
        sid = _der.tlv(_SEQ, issuer_der + serial_der)
        self._signer_info_head = _VERSION_1 + sid + SHA256_DER
        self._signer_info_sig_alg = self._algorithm.algorithm_identifier_der
        self._signed_data_head = _VERSION_1 + _DIGEST_ALGORITHMS
        self._signed_data_head_certs = certificate_set
        # The last signing time and its attribute: a batch's proofs share one.
        self._signing_time: tuple[datetime | None, bytes] = (None, b"")

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """The algorithm the HSM must sign with (follows from the seal key)."""
        return self._algorithm

    @property
    def seal_id(self) -> str | None:
        """The seal id in the certificate's subject serialNumber, if any."""
        return self._seal_id

    @property
    def validity(self) -> tuple[datetime, datetime]:
        """The seal certificate's ``(not_before, not_after)``, aware UTC datetimes."""
        return self._validity

    def prepare(
        self,
        content: bytes,
        *,
        code: str,
        seal_id: str,
        signing_time: datetime,
        endorsement: Endorsement | None = None,
    ) -> PendingProof:
        """Encode the signed attributes for ``content`` (canonical JSON bytes).

        ``seal_id`` must equal the certificate's serialNumber: a proof cannot
        claim a seal other than the one whose key signs it.
        """
        if seal_id != self._seal_id:
            if self._seal_id is not None:
                raise ContentError(f"seal_id {seal_id!r} is not this certificate's seal")
            seal_attr = _attribute(_SEAL_ID_OID, _der.utf8(seal_id))
        else:
            seal_attr = self._seal_id_attr
        if not code:
            raise ContentError("verification code is empty")
        last_time, time_attr = self._signing_time
        if signing_time != last_time or last_time is None:
            encoded_time = _der.time(signing_time)  # refuses a naive datetime first
            not_before, not_after = self._validity
            if not not_before <= signing_time <= not_after:
                raise SealCertificateNotValid(
                    f"the seal certificate is valid from {not_before:%Y-%m-%d %H:%M:%S}"
                    f" to {not_after:%Y-%m-%d %H:%M:%S} UTC, not at the signing time"
                )
            time_attr = _attribute(_SIGNING_TIME_OID, encoded_time)
            self._signing_time = (signing_time, time_attr)
        attrs = [
            _CONTENT_TYPE_ATTR,
            _MESSAGE_DIGEST_PREFIX + hashlib.sha256(content).digest(),
            time_attr,
            _attribute(_VERIFICATION_CODE_OID, _der.utf8(code)),
            seal_attr,
            self._signing_certificate_attr,
        ]
        if endorsement is not None:
            attrs.append(_attribute(_ENDORSEMENT_OID, endorsement.to_der()))
        attrs.sort()  # DER SET OF order; no encoding is a prefix of another
        body = b"".join(attrs)
        signed_attrs_der = _der.tlv(_SET, body)
        return PendingProof(self, content, body, hashlib.sha256(signed_attrs_der).digest())

    def _assemble(
        self, content: bytes, attrs_body: bytes, signature: bytes, unsigned: bytes
    ) -> bytes:
        # A low S (s <= n/2) makes the ECDSA signature's encoding unique: (r, n-s) is as
        # valid, and a checker that accepted both would see two proofs in one.
        signature = low_s_signature(self._key, signature)
        # Headers from lengths, the parts joined once: nesting by concatenation would
        # copy the content once per level.
        header = _der.header
        signature_der = header(_der.OCTET_STRING, len(signature)) + signature
        attrs_head = header(0xA0, len(attrs_body))
        signer_info_len = (
            len(self._signer_info_head)
            + len(attrs_head)
            + len(attrs_body)
            + len(self._signer_info_sig_alg)
            + len(signature_der)
            + len(unsigned)
        )
        signer_info_head = header(_SEQ, signer_info_len)
        signer_infos_head = header(_SET, len(signer_info_head) + signer_info_len)
        signer_infos_len = len(signer_infos_head) + len(signer_info_head) + signer_info_len
        octets_head = header(_der.OCTET_STRING, len(content))
        explicit_len = len(octets_head) + len(content)
        explicit_head = header(0xA0, explicit_len)
        encap_len = len(_ENCAP_TYPE) + len(explicit_head) + explicit_len
        encap_head = header(_SEQ, encap_len)
        signed_data_len = (
            len(self._signed_data_head)
            + len(encap_head)
            + encap_len
            + len(self._signed_data_head_certs)
            + signer_infos_len
        )
        signed_data_head = header(_SEQ, signed_data_len)
        wrapper_len = len(signed_data_head) + signed_data_len
        wrapper_head = header(0xA0, wrapper_len)
        return b"".join(
            (
                header(_SEQ, len(_CONTENT_INFO_TYPE) + len(wrapper_head) + wrapper_len),
                _CONTENT_INFO_TYPE,
                wrapper_head,
                signed_data_head,
                self._signed_data_head,
                encap_head,
                _ENCAP_TYPE,
                explicit_head,
                octets_head,
                content,
                self._signed_data_head_certs,
                signer_infos_head,
                signer_info_head,
                self._signer_info_head,
                attrs_head,
                attrs_body,
                self._signer_info_sig_alg,
                signature_der,
                unsigned,
            )
        )


class PendingProof:
    """A proof whose signed attributes are fixed, awaiting the HSM signature."""

    __slots__ = ("_attrs_body", "_sealer", "content", "digest")

    def __init__(self, sealer: ProofSealer, content: bytes, attrs_body: bytes, digest: bytes):
        self._sealer = sealer
        self._attrs_body = attrs_body
        self.content = content
        #: SHA-256 of the DER SET OF signed attributes (RFC 5652 §5.4): what the HSM signs.
        self.digest = digest

    def signature_value(self, signature: bytes) -> bytes:
        """The HSM's signature as the proof will carry it (ECDSA: its low-S form), shape
        checked: what a signature timestamp must be over, so it is asked for first."""
        return low_s_signature(self._sealer._key, signature)

    def finish(self, signature: bytes, unsigned_attrs: bytes = b"") -> bytes:
        """The ContentInfo DER. The signature's shape is checked, not verified (hot path).

        ``unsigned_attrs`` is the SignerInfo's ``[1] unsignedAttrs`` DER, if any: the
        signature timestamp (:func:`sealgate.crypto.timestamps.signature_timestamp_attributes`)
        over :meth:`signature_value`.
        """
        return self._sealer._assemble(self.content, self._attrs_body, signature, unsigned_attrs)

"""Issuing RFC 3161 timestamp tokens: pure and two-phase, like everything that signs here.

:meth:`TokenIssuer.prepare` reads a TimeStampReq and builds the TSTInfo and the token's
signed attributes; the HSM signs :attr:`PendingToken.digest`; :meth:`PendingToken.finish`
assembles the TimeStampResp. A request the TSA does not accept raises
:class:`RequestRejected`, whose :meth:`~RequestRejected.response` is the answer to send
(RFC 3161 answers refusals in the protocol, with a PKIStatus, not with HTTP errors).

The token (RFC 3161 §2.4.2, RFC 5816)::

    ContentInfo { signedData, SignedData {
      version 3, digestAlgorithms {sha256},
      encapContentInfo { id-ct-TSTInfo, TSTInfo {
        version 1, policy, messageImprint (copied), serialNumber (random, 127 bits),
        genTime (whole seconds, UTC), accuracy 1 s, nonce (copied) } },
      certificates { the TSA certificate } (when the request asks, certReq),
      signerInfos { SignerInfo { version 1, issuerAndSerialNumber, sha256,
        signedAttrs { contentType id-ct-TSTInfo, messageDigest,
                      signingCertificateV2 { ESSCertIDv2 { SHA-256 of the certificate,
                                                           issuerSerial } } },
        signatureAlgorithm (from the TSA key), signature } } } }
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import tsp, x509

from sealgate.crypto import _der
from sealgate.crypto._tokens import TimestampQuery, read_query
from sealgate.crypto.algorithms import (
    SHA256_DER,
    SignatureAlgorithm,
    load_public_key,
    signature_algorithm_of,
)
from sealgate.crypto.errors import BadTimestamp
from sealgate.errors import Error

__all__ = ["DEVELOPMENT_POLICY", "PendingToken", "RequestRejected", "TokenIssuer"]

#: The development TSA's policy: under the joint ISO/ITU-T "example" arc (2.999), which
#: no real TSA uses, so no one mistakes its tokens for a city's; every arc is small, which
#: every toolkit parses.
DEVELOPMENT_POLICY = "2.999.3161.1"

_IMPRINT_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


class RequestRejected(Error):
    """A timestamp request the TSA refuses; ``failure`` is the PKIFailureInfo bit's name."""

    def __init__(self, failure: str, message: str) -> None:
        super().__init__(message)
        self.failure = failure

    def response(self) -> bytes:
        """The TimeStampResp that says so: status rejection, the reason and the bit."""
        status = tsp.PKIStatusInfo(
            {
                "status": "rejection",
                "status_string": [str(self)],
                "fail_info": tsp.PKIFailureInfo({self.failure}),
            }
        )
        # TimeStampResp without its OPTIONAL token (asn1crypto's class insists on one).
        return _der.tlv(_der.SEQUENCE, status.dump())


@dataclass(frozen=True, slots=True)
class PendingToken:
    """A token whose signed attributes are fixed, awaiting the TSA key's signature."""

    issuer: TokenIssuer
    tst_der: bytes
    attrs_body: bytes  # the signed attributes' SET OF contents
    digest: bytes  # SHA-256 of the signed attributes' SET OF DER: what the HSM signs
    with_certificate: bool

    def finish(self, signature: bytes) -> bytes:
        """The granted TimeStampResp DER."""
        return self.issuer._response(self, signature)


def _integer(value: int) -> bytes:
    """A DER INTEGER of a non-negative ``value``."""
    return _der.tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _attribute(oid: str, value_der: bytes) -> bytes:
    return _der.tlv(_der.SEQUENCE, _der.oid(oid) + _der.tlv(_der.SET, value_der))


_SEQ = _der.SEQUENCE
_OID_TST_INFO = _der.oid("1.2.840.113549.1.9.16.1.4")
_CONTENT_TYPE = _attribute("1.2.840.113549.1.9.3", _OID_TST_INFO)
_MESSAGE_DIGEST_OID = _der.oid("1.2.840.113549.1.9.4")
_SIGNED_DATA_OID = _der.oid("1.2.840.113549.1.7.2")
_ACCURACY = _der.tlv(_SEQ, _integer(1))  # Accuracy { seconds 1 }
_GRANTED = _der.tlv(_SEQ, _integer(0))  # PKIStatusInfo { granted }


class TokenIssuer:
    """Issues tokens with one TSA certificate (its key is in the TSA's token).

    What every token shares is encoded once; per token, DER is concatenated (the
    dev TSA runs beside the gateway in the capacity harness, so its cost is counted).
    """

    def __init__(self, certificate_der: bytes, *, policy: str = DEVELOPMENT_POLICY) -> None:
        certificate = x509.Certificate.load(certificate_der, strict=True)
        tbs = certificate["tbs_certificate"]
        key = load_public_key(tbs["subject_public_key_info"].dump())
        self._algorithm: SignatureAlgorithm = signature_algorithm_of(key)
        self._certificate_der = certificate_der
        self._policy_der = _der.oid(policy)
        issuer_der, serial_der = tbs["issuer"].dump(), tbs["serial_number"].dump()
        # ESSCertIDv2 { certHash, issuerSerial { GeneralNames { directoryName [4] }, serial } }
        issuer_serial = _der.tlv(_SEQ, _der.tlv(_SEQ, _der.tlv(0xA4, issuer_der)) + serial_der)
        ess_cert_id = _der.tlv(
            _SEQ,
            _der.tlv(_der.OCTET_STRING, hashlib.sha256(certificate_der).digest()) + issuer_serial,
        )
        signing_certificate = _attribute(
            "1.2.840.113549.1.9.16.2.47", _der.tlv(_SEQ, _der.tlv(_SEQ, ess_cert_id))
        )
        self._fixed_attrs = (_CONTENT_TYPE, signing_certificate)
        self._signer_head = (
            _integer(1) + _der.tlv(_SEQ, issuer_der + serial_der) + SHA256_DER
        )  # version, sid issuerAndSerialNumber, digestAlgorithm
        self._signed_data_head = _integer(3) + _der.tlv(_der.SET, SHA256_DER)
        self._certificates = _der.tlv(0xA0, certificate_der)

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """What the TSA key signs with."""
        return self._algorithm

    def prepare(self, request_der: bytes, *, gen_time: datetime, serial: int) -> PendingToken:
        """The token answering ``request_der`` at ``gen_time`` (aware, whole seconds),
        awaiting its signature; :class:`RequestRejected` for a request it cannot answer."""
        query = _read_request(request_der)
        if query.policy_der is not None and query.policy_der != self._policy_der[2:]:
            raise RequestRejected("unaccepted_policy", "this TSA issues under one policy only")
        tst_der = _der.tlv(
            _SEQ,
            b"".join(
                (
                    _integer(1),
                    self._policy_der,
                    query.imprint_der,
                    _integer(serial),
                    _der.generalized_time(gen_time),
                    _ACCURACY,
                    query.nonce_der or b"",
                )
            ),
        )
        digest_attr = _der.tlv(
            _SEQ,
            _MESSAGE_DIGEST_OID
            + _der.tlv(_der.SET, _der.tlv(_der.OCTET_STRING, hashlib.sha256(tst_der).digest())),
        )
        # DER SET OF: in the order of their encodings, which is what a verifier re-encoding
        # them (OpenSSL does) computes the signature over.
        body = b"".join(sorted((*self._fixed_attrs, digest_attr)))
        return PendingToken(
            issuer=self,
            tst_der=tst_der,
            attrs_body=body,
            digest=hashlib.sha256(_der.tlv(_der.SET, body)).digest(),
            with_certificate=query.cert_req,
        )

    def _response(self, pending: PendingToken, signature: bytes) -> bytes:
        signer = _der.tlv(
            _SEQ,
            self._signer_head
            + _der.tlv(0xA0, pending.attrs_body)
            + self._algorithm.algorithm_identifier_der
            + _der.tlv(_der.OCTET_STRING, signature),
        )
        encap = _der.tlv(
            _SEQ, _OID_TST_INFO + _der.tlv(0xA0, _der.tlv(_der.OCTET_STRING, pending.tst_der))
        )
        signed_data = _der.tlv(
            _SEQ,
            self._signed_data_head
            + encap
            + (self._certificates if pending.with_certificate else b"")
            + _der.tlv(_der.SET, signer),
        )
        token = _der.tlv(_SEQ, _SIGNED_DATA_OID + _der.tlv(0xA0, signed_data))
        return _der.tlv(_SEQ, _GRANTED + token)


def _read_request(request_der: bytes) -> TimestampQuery:
    try:
        query = read_query(request_der)
    except BadTimestamp:
        raise RequestRejected("bad_data_format", "not a DER TimeStampReq") from None
    if query.version != b"\x01":
        raise RequestRejected("bad_request", "only version 1 requests are answered")
    if query.imprint_algorithm not in _IMPRINT_SIZES or not query.imprint_parameters_ok:
        raise RequestRejected("bad_alg", "the imprint must be SHA-256, SHA-384 or SHA-512")
    if len(query.imprint) != _IMPRINT_SIZES[query.imprint_algorithm]:
        raise RequestRejected("bad_data_format", "the imprint's length does not fit its hash")
    if query.has_extensions:
        raise RequestRejected("unaccepted_extensions", "this TSA accepts no extensions")
    return query

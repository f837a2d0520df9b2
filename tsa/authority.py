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

from asn1crypto import algos, cms, core, tsp, x509

from sealgate.crypto import _der
from sealgate.crypto.algorithms import SignatureAlgorithm, load_public_key, signature_algorithm_of
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
    signed_attrs: cms.CMSAttributes
    digest: bytes  # SHA-256 of the signed attributes' SET OF DER: what the HSM signs
    with_certificate: bool

    def finish(self, signature: bytes) -> bytes:
        """The granted TimeStampResp DER."""
        return self.issuer._response(self, signature)


class TokenIssuer:
    """Issues tokens with one TSA certificate (its key is in the TSA's token)."""

    def __init__(self, certificate_der: bytes, *, policy: str = DEVELOPMENT_POLICY) -> None:
        certificate = x509.Certificate.load(certificate_der, strict=True)
        self._certificate = certificate
        self._policy = policy
        key = load_public_key(certificate["tbs_certificate"]["subject_public_key_info"].dump())
        self._algorithm: SignatureAlgorithm = signature_algorithm_of(key)
        issuer_serial = tsp.IssuerSerial(
            {
                "issuer": [x509.GeneralName(name="directory_name", value=certificate.issuer)],
                "serial_number": certificate.serial_number,
            }
        )
        signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                "cert_hash": hashlib.sha256(certificate_der).digest(),
                                "issuer_serial": issuer_serial,
                            }
                        ]
                    }
                ],
            }
        )
        content_type = cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]})
        # The attributes every token shares, encoded once.
        self._fixed_attrs = (content_type.dump(), signing_certificate.dump())

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """What the TSA key signs with."""
        return self._algorithm

    def prepare(self, request_der: bytes, *, gen_time: datetime, serial: int) -> PendingToken:
        """The token answering ``request_der`` at ``gen_time`` (aware, whole seconds),
        awaiting its signature; :class:`RequestRejected` for a request it cannot answer."""
        request = _read_request(request_der)
        if request["req_policy"].native not in (None, self._policy):
            raise RequestRejected("unaccepted_policy", "this TSA issues under one policy only")
        fields = {
            "version": "v1",
            "policy": self._policy,
            "message_imprint": request["message_imprint"],
            "serial_number": serial,
            "gen_time": _der.as_utc(gen_time),
            "accuracy": {"seconds": 1},
        }
        if request["nonce"].native is not None:
            fields["nonce"] = request["nonce"].native
        tst_der: bytes = tsp.TSTInfo(fields).dump()
        digest_attr = cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}
        ).dump()
        # DER SET OF: in the order of their encodings, which is what a verifier re-encoding
        # them (OpenSSL does) computes the signature over.
        body = b"".join(sorted((*self._fixed_attrs, digest_attr)))
        attrs_der = _der.tlv(_der.SET, body)
        return PendingToken(
            issuer=self,
            tst_der=tst_der,
            signed_attrs=cms.CMSAttributes.load(attrs_der),
            digest=hashlib.sha256(attrs_der).digest(),
            with_certificate=bool(request["cert_req"].native),
        )

    def _response(self, pending: PendingToken, signature: bytes) -> bytes:
        certificate = self._certificate
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number",
                    value={
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    },
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": pending.signed_attrs,
                "signature_algorithm": cms.SignedDigestAlgorithm.load(
                    self._algorithm.algorithm_identifier_der
                ),
                "signature": signature,
            }
        )
        signed_data = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(pending.tst_der),
            },
            "signer_infos": [signer],
        }
        if pending.with_certificate:
            signed_data["certificates"] = [certificate]
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        der: bytes = response.dump()
        return der


def _read_request(request_der: bytes) -> tsp.TimeStampReq:
    try:
        _der.check_der_lengths(request_der)
        request = tsp.TimeStampReq.load(request_der, strict=True)
        version = request["version"].native
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        parameters = imprint["hash_algorithm"]["parameters"]
        hashed = imprint["hashed_message"].native
        has_extensions = request["extensions"].native is not None
        request["nonce"].native  # noqa: B018 - parsed now, so a bad one is refused now
        request["req_policy"].native  # noqa: B018
        request["cert_req"].native  # noqa: B018
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        raise RequestRejected("bad_data_format", "not a DER TimeStampReq") from None
    if version != "v1":
        raise RequestRejected("bad_request", "only version 1 requests are answered")
    if algorithm not in _IMPRINT_SIZES or not isinstance(parameters, core.Void | core.Null):
        raise RequestRejected("bad_alg", "the imprint must be SHA-256, SHA-384 or SHA-512")
    if not isinstance(hashed, bytes) or len(hashed) != _IMPRINT_SIZES[algorithm]:
        raise RequestRejected("bad_data_format", "the imprint's length does not fit its hash")
    if has_extensions:
        raise RequestRejected("unaccepted_extensions", "this TSA accepts no extensions")
    return request

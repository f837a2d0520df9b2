"""The one exception tree of :mod:`crypto`.

Failure is always an exception, never a ``False``::

    CryptoError
    ├── ContentError                 what we were asked to encode cannot be encoded
    │   │                            (non-JSON value, naive datetime, bad seal id,
    │   │                             malformed HSM signature, unusable key...)
    │   └── SealCertificateNotValid  signing time outside the seal certificate's validity
    ├── TimestampRefused             the TSA answered a timestamp request with a refusal
    ├── ProofError                   a proof (or certificate) does not verify
    │   ├── MalformedProof           not the DER structure we issue; too large
    │   ├── DigestMismatch           content does not match the signed message-digest
    │   ├── BadSignature             signature does not verify with the signer's key
    │   ├── UntrustedSeal            seal certificate does not chain to a trusted root,
    │   │                            or lacks keyUsage / documentSigning EKU
    │   ├── SealNotValidAtSigningTime  signing-time outside seal or root validity
    │   ├── SignedInTheFuture      signing time (or timestamp) ahead of the checker's clock
    │   ├── SignedAfterRetirement  signed after the seal key was retired
    │   ├── TrustDocumentError     a trust document malformed or not signed by a trusted root
    │   ├── BadTimestamp           a signature timestamp that does not verify, answers
    │   │                          another signature, or comes from an untrusted TSA
    │   ├── SealRevoked            the seal certificate is on the root's CRL for the
    │   │                          proof's time (crypto/revocation.py)
    │   └── RevocationUnknown      no current, genuine CRL to tell
    └── CoseError                      a COSE_Sign1 message (QR payload, status list) fails
        ├── MalformedQr                  not a payload of the shape we issue (prefix,
        │                                Base45, zlib, CBOR, COSE, claims)
        ├── UntrustedKey                 its key id is not in the trust list for that use
        ├── CoseBadSignature             the signature does not verify with the named key
        ├── Expired                      past its expiry (a dynamic QR, a status list)
        └── HolderMismatch               the identity number typed is not the holder's

Errors raised by asn1crypto / cryptography are translated where they enter
(``raise MalformedProof(...) from exc``) so callers only ever catch this tree.
"""

from __future__ import annotations

from sealgate.errors import Error

__all__ = [
    "BadSignature",
    "BadTimestamp",
    "ContentError",
    "CoseBadSignature",
    "CoseError",
    "CryptoError",
    "DigestMismatch",
    "Expired",
    "HolderMismatch",
    "MalformedProof",
    "MalformedQr",
    "ProofError",
    "RevocationUnknown",
    "SealCertificateNotValid",
    "SealNotValidAtSigningTime",
    "SealRevoked",
    "SignedAfterRetirement",
    "SignedInTheFuture",
    "TimestampRefused",
    "TrustDocumentError",
    "UntrustedKey",
    "UntrustedSeal",
]


class CryptoError(Error):
    """Root of every error raised by :mod:`crypto`."""


class ContentError(CryptoError, ValueError):
    """The caller's input cannot be encoded as asked; a programming or data error."""


class SealCertificateNotValid(ContentError):
    """The signing time lies outside the seal certificate's validity: the proof would be
    refused by every checker (:class:`SealNotValidAtSigningTime`), so it is not made."""


class ProofError(CryptoError):
    """A proof failed verification; the subclass says which check failed."""


class MalformedProof(ProofError):
    """The bytes are not a sealed proof of the shape we issue."""


class DigestMismatch(ProofError):
    """The content does not hash to the signed message-digest: it was altered."""


class BadSignature(ProofError):
    """The signature does not verify with the signer certificate's public key."""


class UntrustedSeal(ProofError):
    """The seal certificate is not one a trusted root issued for document signing."""


class SealNotValidAtSigningTime(ProofError):
    """The signing time lies outside the validity of the seal or its root."""


class BadTimestamp(ProofError):
    """A signature timestamp (RFC 3161 token) that does not verify, is over other data
    than the signature, comes from a TSA the verifier does not trust, or contradicts the
    signing time (:mod:`sealgate.crypto.timestamps`)."""


class TimestampRefused(CryptoError):
    """The time-stamping authority answered with a refusal (a PKIStatus other than granted)."""


class SignedInTheFuture(ProofError):
    """The proof's signing time or timestamp lies ahead of the checker's clock."""


class SignedAfterRetirement(ProofError):
    """The proof was signed after its seal key was retired: no seal signs with it then."""


class TrustDocumentError(ProofError):
    """A trust document that is malformed or not signed by a trusted root."""


class SealRevoked(ProofError):
    """The seal's certificate was revoked before the proof's (trusted) time, or was
    revoked for a compromise and the proof's time cannot show it came before."""


class RevocationUnknown(ProofError):
    """Whether the seal is revoked cannot be told: the CRL is not the root's, does not
    verify, is not yet current or is out of date."""


class CoseError(CryptoError):
    """A signed COSE message (a QR payload, a status list) failed its check."""


class MalformedQr(CoseError):
    """Not a message of the shape we issue: prefix, Base45, zlib, CBOR, COSE or claims."""


class UntrustedKey(CoseError):
    """The message names a key the trust list does not hold for that use."""


class CoseBadSignature(CoseError):
    """The signature does not verify with the key the message names: it was altered."""


class Expired(CoseError):
    """The message is past its expiry."""


class HolderMismatch(CoseError):
    """The identity number given is not the one the payload was made for."""

"""Pure, I/O-free cryptography of sealgate: canonical JSON, seal certificates, sealed proofs.

Nothing here holds a private key. Whatever needs a signature is two-phase:
``prepare_*`` returns a pending object whose ``digest`` (SHA-256) the HSM signs,
and ``finish(signature)`` assembles the DER.
"""

from sealgate.crypto.algorithms import SignatureAlgorithm
from sealgate.crypto.canonical import canonical_json, canonical_string
from sealgate.crypto.certificates import (
    PendingCertificate,
    certificate_pem,
    certificate_validity,
    prepare_root_certificate,
    prepare_seal_certificate,
    public_key_der_of,
)
from sealgate.crypto.errors import (
    BadSignature,
    BadTimestamp,
    ContentError,
    CryptoError,
    DigestMismatch,
    MalformedProof,
    ProofError,
    SealCertificateNotValid,
    SealNotValidAtSigningTime,
    TimestampRefused,
    UntrustedSeal,
)
from sealgate.crypto.proof import Endorsement, PendingProof, ProofSealer
from sealgate.crypto.verification import TrustList, VerifiedProof, verify_proof

__all__ = [
    "BadSignature",
    "BadTimestamp",
    "ContentError",
    "CryptoError",
    "DigestMismatch",
    "Endorsement",
    "MalformedProof",
    "PendingCertificate",
    "PendingProof",
    "ProofError",
    "ProofSealer",
    "SealCertificateNotValid",
    "SealNotValidAtSigningTime",
    "SignatureAlgorithm",
    "TimestampRefused",
    "TrustList",
    "UntrustedSeal",
    "VerifiedProof",
    "canonical_json",
    "canonical_string",
    "certificate_pem",
    "certificate_validity",
    "prepare_root_certificate",
    "prepare_seal_certificate",
    "public_key_der_of",
    "verify_proof",
]

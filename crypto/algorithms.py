"""Signature algorithms the HSM offers, and how a public key selects one.

The algorithm is never chosen by the caller: it follows from the signer's key,
so a certificate or proof cannot claim ECDSA while carrying an RSA signature.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from sealgate.crypto import _der
from sealgate.crypto.errors import ContentError

__all__ = ["SignatureAlgorithm", "load_public_key", "signature_algorithm_of"]

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: AlgorithmIdentifier DER: SHA-256 with parameters absent (RFC 5754 §2).
SHA256_DER = _der.tlv(_der.SEQUENCE, _der.oid("2.16.840.1.101.3.4.2.1"))
MIN_RSA_BITS = 2048


class SignatureAlgorithm(enum.Enum):
    """What the HSM signature over a SHA-256 digest is."""

    #: DER ``ECDSA-Sig-Value`` with a P-256 key.
    ECDSA_SHA256 = "ecdsa-with-SHA256"
    #: RSASSA-PKCS1-v1_5 with SHA-256.
    RSA_PKCS1_SHA256 = "sha256WithRSAEncryption"

    @property
    def algorithm_identifier_der(self) -> bytes:
        """AlgorithmIdentifier DER: ECDSA omits parameters (RFC 5758), RSA has NULL (RFC 4055)."""
        return _ALGORITHM_IDENTIFIERS[self]


_ALGORITHM_IDENTIFIERS = {
    SignatureAlgorithm.ECDSA_SHA256: _der.tlv(_der.SEQUENCE, _der.oid("1.2.840.10045.4.3.2")),
    SignatureAlgorithm.RSA_PKCS1_SHA256: _der.tlv(
        _der.SEQUENCE, _der.oid("1.2.840.113549.1.1.11") + b"\x05\x00"
    ),
}


def load_public_key(public_key_der: bytes) -> PublicKey:
    """Parse a SubjectPublicKeyInfo; only P-256 and RSA >= 2048 are accepted."""
    try:
        key = serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ContentError("not a DER SubjectPublicKeyInfo") from exc
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise ContentError("only EC P-256 and RSA >= 2048 keys are supported")


def signature_algorithm_of(key: PublicKey) -> SignatureAlgorithm:
    """The algorithm a signature by this key must use."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return SignatureAlgorithm.ECDSA_SHA256
    return SignatureAlgorithm.RSA_PKCS1_SHA256


def verify_digest_signature(key: PublicKey, signature: bytes, digest: bytes) -> None:
    """Verify a signature over a SHA-256 digest; raises ``InvalidSignature``."""
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(prehashed))
    else:
        key.verify(signature, digest, padding.PKCS1v15(), prehashed)


def low_s_signature(key: PublicKey, signature: bytes) -> bytes:
    """An HSM signature checked for shape, an ECDSA one with its S made low (s <= n/2).

    Catches a wrong encoding (raw r||s instead of DER) or a key mix-up without paying
    for a full verification on the hot path. (r, n-s) verifies wherever (r, s) does, so
    ECDSA has two encodings of each signature; sealgate issues only the low one, and
    :func:`is_high_s` lets a checker refuse the other.
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            r, s = utils.decode_dss_signature(signature)
        except ValueError as exc:
            raise ContentError("ECDSA signature is not a DER ECDSA-Sig-Value") from exc
        if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
            raise ContentError("ECDSA signature values out of range")
        if s > P256_ORDER // 2:
            return utils.encode_dss_signature(r, P256_ORDER - s)
    elif len(signature) != (key.key_size + 7) // 8:
        raise ContentError("RSA signature length does not match the modulus")
    return signature


def is_high_s(signature: bytes) -> bool:
    """Whether a DER ECDSA-Sig-Value (P-256) has S above n/2; ValueError if not DER."""
    return utils.decode_dss_signature(signature)[1] > P256_ORDER // 2


#: The order n of P-256's base point.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

"""ES256 signatures as COSE and JOSE write them: 64 bytes of ``r || s`` (RFC 7518 §3.4),
from and to the DER ``ECDSA-Sig-Value`` the HSM and ``cryptography`` speak."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sealgate.crypto.errors import ContentError, CoseBadSignature

HALF = 32


def raw_signature(der_signature: bytes) -> bytes:
    """``r || s`` of the HSM's DER signature; :class:`ContentError` if it is not P-256's."""
    try:
        r, s = decode_dss_signature(der_signature)
        return r.to_bytes(HALF, "big") + s.to_bytes(HALF, "big")
    except (ValueError, OverflowError) as exc:
        raise ContentError("the HSM's signature is not a P-256 ECDSA signature") from exc


def verify_raw(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> None:
    """Raise :class:`CoseBadSignature` unless ``signature`` (``r || s``) holds over ``signed``."""
    if len(signature) != 2 * HALF:
        raise CoseBadSignature("the signature is not 64 bytes of r || s")
    der = encode_dss_signature(
        int.from_bytes(signature[:HALF], "big"), int.from_bytes(signature[HALF:], "big")
    )
    try:
        key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CoseBadSignature("the signature does not verify with the named key") from None

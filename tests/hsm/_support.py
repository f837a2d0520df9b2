"""Helpers shared by the hsm tests: verification with `cryptography`, unique labels."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sealgate.hsm.keystore import KeyInfo


def unique_label(prefix: str) -> str:
    # The SoftHSM2 token lives for the whole run: labels must not collide across tests.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def verify(info: KeyInfo, digest: bytes, signature: bytes) -> None:
    """Raise cryptography's InvalidSignature unless ``signature`` is valid for ``digest``."""
    public = load_der_public_key(info.public_key_der)
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, digest, ec.ECDSA(prehashed))
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, digest, padding.PKCS1v15(), prehashed)
    else:
        raise AssertionError(f"unexpected key type {type(public).__name__}")

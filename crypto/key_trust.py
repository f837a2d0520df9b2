"""The keys a verifier trusts for COSE messages: key id → public key, allowed uses.

The city's root-signed trust document (``GET /v1/trust``,
:mod:`sealgate.crypto.trust_document`) carries them as its ``keys`` entries, each
``{"kid": base64url, "use": ["qr" | "status-list" | "consent"], "public_key": PEM}``, and
hands them here once its signature held. The gateway keeps the same entries (with each
key's label) in its home's ``gateway-keys.json`` (:mod:`sealgate.gateway.attestation`),
from which each publication takes them. A key is trusted only for the uses listed
beside it: a key for status lists cannot vouch for a QR.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sealgate.crypto.errors import ContentError, UntrustedKey

KID_BYTES = 8  # as the EU DCC: the first 8 bytes of a SHA-256


class Use:
    """What a gateway key may sign (the trust list's ``use``)."""

    QR = "qr"
    STATUS_LIST = "status-list"
    CONSENT = "consent"
    HOLDER_ASSERTION = "holder-assertion"  # an identity platform's, not the gateway's


def key_id(public_key_der: bytes) -> bytes:
    """The key id of a public key: the first 8 bytes of SHA-256 of its SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der).digest()[:KID_BYTES]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TrustedKey:
    kid: bytes
    public_key: ec.EllipticCurvePublicKey
    uses: frozenset[str]

    @classmethod
    def from_der(cls, public_key_der: bytes, uses: Iterable[str]) -> TrustedKey:
        key = serialization.load_der_public_key(public_key_der)
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ContentError("a COSE key must be an EC P-256 key")
        return cls(key_id(public_key_der), key, frozenset(uses))

    def entry(self) -> dict[str, Any]:
        pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"kid": b64url(self.kid), "use": sorted(self.uses), "public_key": pem.decode()}


class KeyTrust:
    """Trusted keys by key id."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys = {k.kid: k for k in keys}

    def key(self, kid: bytes, use: str) -> TrustedKey:
        found = self._keys.get(kid)
        if found is None:
            raise UntrustedKey("the key id is not in the trust list")
        if use not in found.uses:
            raise UntrustedKey(f"the trust list does not allow this key for {use}")
        return found

    def keys(self) -> list[TrustedKey]:
        return list(self._keys.values())

    def document(self) -> dict[str, Any]:
        return {"keys": [k.entry() for k in self._keys.values()]}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> KeyTrust:
        """From a trust document's ``keys``; :class:`ContentError` if an entry is not one
        or its ``kid`` is not its key's."""
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ContentError("the trust document has no list of keys")
        keys = []
        for entry in entries:
            try:
                pem = entry["public_key"].encode()
                der = serialization.load_pem_public_key(pem).public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                key = TrustedKey.from_der(der, [str(u) for u in entry["use"]])
                stated = from_b64url(entry["kid"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ContentError(f"a trust document key entry is not one: {exc}") from None
            if stated != key.kid:
                raise ContentError("a trust document key's kid is not its key's")
            keys.append(key)
        return cls(keys)

    @classmethod
    def from_json(cls, text: str | bytes) -> KeyTrust:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ContentError(f"the trust document is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ContentError("the trust document is not a JSON object")
        return cls.from_document(document)

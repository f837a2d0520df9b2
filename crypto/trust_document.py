"""The trust document (``GET /v1/trust``): the city's roots, every seal key, with each
key's validity and retirement time, and the gateway's own keys (QR payloads, status lists,
consents), versioned and signed by the city root.

A checker offline needs more than the roots: a retired key still chains to the root,
so only a statement of *when* each key was retired lets it refuse a proof the key
signed later. The statement must come from the root, not from whoever serves it::

    {"document": {"format": "sealgate-trust/1", "version": N, "issued_at": RFC 3339,
                  "roots": [PEM], "seals": [{"seal_id", "kind", "kind_name", "unit_name",
                  "unit_code", "version", "state", "not_before", "not_after",
                  "retired_at" (null while active), "certificate": PEM}],
                  "keys": [{"kid": base64url, "use": [...], "public_key": PEM}]},
     "signature": {"algorithm": "ecdsa-with-SHA256" | "sha256WithRSAEncryption",
                   "root": hex SHA-256 of the signing root's DER,
                   "value": base64 of the signature over SHA-256(RFC 8785 JSON of document)}}

``version`` grows by one with each publication, so a checker can tell a newer list from
an older one replayed to it. ``keys`` is :meth:`KeyTrust.document`'s; a document
published before it was added has none, and reads back with no keys. Two-phase like
every signature here: the root key signs the digest where it lives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from sealgate.crypto.algorithms import (
    load_public_key,
    signature_algorithm_of,
    verify_digest_signature,
)
from sealgate.crypto.canonical import canonical_json
from sealgate.crypto.certificates import certificate_pem
from sealgate.crypto.errors import ContentError, TrustDocumentError
from sealgate.crypto.key_trust import KeyTrust
from sealgate.crypto.verification import TrustList

__all__ = [
    "FORMAT",
    "PendingTrustDocument",
    "SealKeyEntry",
    "TrustDocument",
    "TrustDocumentError",
    "prepare_trust_document",
    "read_trust_document",
]

FORMAT = "sealgate-trust/1"


@dataclass(frozen=True, slots=True)
class SealKeyEntry:
    """One seal key as the trust document lists it."""

    seal_id: str
    kind: str
    kind_name: str
    unit_name: str
    unit_code: str
    version: int
    state: str
    certificate: bytes  # DER
    retired_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        cert = x509.load_der_x509_certificate(self.certificate)
        return {
            "seal_id": self.seal_id,
            "kind": self.kind,
            "kind_name": self.kind_name,
            "unit_name": self.unit_name,
            "unit_code": self.unit_code,
            "version": self.version,
            "state": self.state,
            "not_before": _instant(cert.not_valid_before_utc),
            "not_after": _instant(cert.not_valid_after_utc),
            "retired_at": None if self.retired_at is None else _instant(self.retired_at),
            "certificate": certificate_pem(self.certificate),
        }


class PendingTrustDocument:
    """A trust document awaiting the root's signature over :attr:`digest`."""

    __slots__ = ("_body", "_root_der", "digest")

    def __init__(self, body: dict[str, Any], root_der: bytes) -> None:
        self._body = body
        self._root_der = root_der
        #: SHA-256 of the RFC 8785 JSON of the document: what the root key signs.
        self.digest = hashlib.sha256(canonical_json(body)).digest()

    def finish(self, signature: bytes) -> bytes:
        """The signed document (UTF-8 JSON), its signature checked first."""
        root = x509.load_der_x509_certificate(self._root_der)
        key = load_public_key(root.public_key().public_bytes(*_SPKI))
        try:
            verify_digest_signature(key, signature, self.digest)
        except InvalidSignature as exc:
            raise ContentError("the signature is not the root's over this document") from exc
        signed = {
            "document": self._body,
            "signature": {
                "algorithm": signature_algorithm_of(key).value,
                "root": hashlib.sha256(self._root_der).hexdigest(),
                "value": base64.b64encode(signature).decode("ascii"),
            },
        }
        # ending with a newline, as every answer of the gateway's does
        return json.dumps(signed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def prepare_trust_document(
    *,
    version: int,
    issued_at: datetime,
    roots: Sequence[bytes],
    seal_keys: Sequence[SealKeyEntry],
    keys: KeyTrust,
    root_der: bytes,
) -> PendingTrustDocument:
    """The document of these roots, seal keys and gateway ``keys``, to be signed by the
    root ``root_der``."""
    if version < 1:
        raise ContentError("a trust document's version starts at 1")
    body = {
        "format": FORMAT,
        "version": version,
        "issued_at": _instant(issued_at),
        "roots": [certificate_pem(der) for der in roots],
        "seals": [entry.as_json() for entry in seal_keys],
        **keys.document(),
    }
    return PendingTrustDocument(body, root_der)


@dataclass(frozen=True, slots=True)
class TrustDocument:
    """A trust document whose root signature held."""

    version: int
    issued_at: datetime
    #: every seal certificate (DER) listed → when its key retired (None: active)
    retirements: Mapping[bytes, datetime | None]
    #: the gateway's keys for COSE messages (none in a document published before them)
    keys: KeyTrust


def read_trust_document(data: bytes, trust: TrustList) -> TrustDocument:
    """Check a signed trust document against ``trust`` (the checker's own roots)."""
    try:
        signed = json.loads(data)
        body = signed["document"]
        signature = signed["signature"]
        root_der = next(
            der for der in trust.roots if hashlib.sha256(der).hexdigest() == signature["root"]
        )
        value = base64.b64decode(signature["value"], validate=True)
    except StopIteration:
        raise TrustDocumentError("the trust document is not signed by a trusted root") from None
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise TrustDocumentError(f"not a trust document: {type(exc).__name__}") from None
    root = x509.load_der_x509_certificate(root_der)
    key = load_public_key(root.public_key().public_bytes(*_SPKI))
    if signature.get("algorithm") != signature_algorithm_of(key).value:
        raise TrustDocumentError("the trust document's algorithm is not its root key's")
    digest = hashlib.sha256(canonical_json(body)).digest()
    try:
        verify_digest_signature(key, value, digest)
    except InvalidSignature:
        raise TrustDocumentError("the trust document's signature does not verify") from None
    return _entries(body)


def _entries(body: Any) -> TrustDocument:
    try:
        if body["format"] != FORMAT:
            raise TrustDocumentError(f"trust document format {body['format']!r} is not {FORMAT}")
        retirements: dict[bytes, datetime | None] = {}
        for seal in body["seals"]:
            der = x509.load_pem_x509_certificate(seal["certificate"].encode("ascii")).public_bytes(
                serialization.Encoding.DER
            )
            retired = seal["retired_at"]
            retirements[der] = None if retired is None else datetime.fromisoformat(retired)
        return TrustDocument(
            version=int(body["version"]),
            issued_at=datetime.fromisoformat(body["issued_at"]),
            retirements=retirements,
            keys=KeyTrust.from_document(body) if "keys" in body else KeyTrust([]),
        )
    except ContentError as exc:  # a key entry that is not one, or whose kid is not its key's
        raise TrustDocumentError(f"not a trust document: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrustDocumentError(f"not a trust document: {type(exc).__name__}") from None


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _instant(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

"""COSE_Sign1 (RFC 9052 §4.2) with ES256, two-phase like the rest of :mod:`sealgate.crypto`.

:func:`prepare_sign1` returns the SHA-256 digest of the ``Sig_structure`` for the HSM to
sign; :meth:`PendingSign1.finish` takes the HSM's DER ECDSA signature, turns it into
COSE's fixed 64-byte ``r || s`` and assembles the tagged message. :func:`open_sign1`
checks one against a :class:`~sealgate.crypto.key_trust.KeyTrust` for a stated use and
returns its payload. Only ES256 (P-256): a QR code has no room for RSA signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from sealgate.crypto.errors import MalformedQr
from sealgate.crypto.es256 import raw_signature, verify_raw
from sealgate.crypto.key_trust import KeyTrust, TrustedKey

COSE_SIGN1_TAG = 18
ALG = 1  # header label: alg
KID = 4  # header label: kid
TYP = 16  # header label: typ (RFC 9596)
ES256 = -7
_P256_HALF = 32


@dataclass(frozen=True, slots=True)
class PendingSign1:
    protected: bytes
    payload: bytes
    digest: bytes  # SHA-256 of the Sig_structure: what the HSM signs

    def finish(self, der_signature: bytes) -> bytes:
        """The tagged COSE_Sign1, from the HSM's DER ``ECDSA-Sig-Value``."""
        raw = raw_signature(der_signature)
        return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [self.protected, {}, self.payload, raw]))


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def prepare_sign1(kid: bytes, payload: bytes, *, typ: str | None = None) -> PendingSign1:
    header: dict[int, Any] = {ALG: ES256, KID: kid}
    if typ is not None:
        header[TYP] = typ
    protected = cbor2.dumps(header)
    digest = hashlib.sha256(_sig_structure(protected, payload)).digest()
    return PendingSign1(protected, payload, digest)


@dataclass(frozen=True, slots=True)
class OpenedSign1:
    key: TrustedKey
    payload: bytes
    typ: str | None


def open_sign1(message: bytes, trust: KeyTrust, use: str) -> OpenedSign1:
    """The payload of a COSE_Sign1 whose key ``trust`` holds for ``use`` and whose
    signature holds; :class:`MalformedQr`, :class:`UntrustedKey` or
    :class:`CoseBadSignature` otherwise."""
    try:
        decoded = cbor2.loads(message)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise MalformedQr("not CBOR") from None
    if isinstance(decoded, cbor2.CBORTag):
        if decoded.tag != COSE_SIGN1_TAG:
            raise MalformedQr("not a COSE_Sign1 message")
        decoded = decoded.value
    if not (
        isinstance(decoded, list | tuple)  # a tagged array decodes as a tuple
        and len(decoded) == 4
        and isinstance(decoded[0], bytes)
        and isinstance(decoded[1], Mapping)
        and isinstance(decoded[2], bytes)
        and isinstance(decoded[3], bytes)
    ):
        raise MalformedQr("not a COSE_Sign1 message")
    protected, _unprotected, payload, signature = decoded
    try:
        header = cbor2.loads(protected)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise MalformedQr("the protected header is not CBOR") from None
    if not isinstance(header, Mapping) or header.get(ALG) != ES256:
        raise MalformedQr("the protected header does not name ES256")
    kid = header.get(KID)
    if not isinstance(kid, bytes):
        raise MalformedQr("the protected header names no key id")
    typ = header.get(TYP)
    if typ is not None and not isinstance(typ, str):
        raise MalformedQr("the typ header is not text")
    key = trust.key(kid, use)  # the key id is protected: it cannot be swapped
    verify_raw(key.public_key, signature, _sig_structure(protected, payload))
    return OpenedSign1(key, payload, typ)

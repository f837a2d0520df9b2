"""Compact JWS (RFC 7515) with ES256, two-phase: the consent token a holder's portal hands
to the unit it authorises.

:func:`prepare_jws` gives the SHA-256 digest of the signing input for the HSM;
:meth:`PendingJws.finish` takes the HSM's DER signature and writes
``header.payload.signature`` (base64url, the signature as 64 bytes of ``r || s``).
:func:`open_jws` checks one against a :class:`KeyTrust` for a use and returns its claims.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sealgate.crypto.errors import MalformedQr
from sealgate.crypto.es256 import raw_signature, verify_raw
from sealgate.crypto.key_trust import KeyTrust, b64url, from_b64url

MAX_TOKEN = 4096


@dataclass(frozen=True, slots=True)
class PendingJws:
    signing_input: bytes
    digest: bytes

    def finish(self, der_signature: bytes) -> str:
        return self.signing_input.decode() + "." + b64url(raw_signature(der_signature))


def prepare_jws(kid: bytes, claims: dict[str, Any], *, typ: str) -> PendingJws:
    header = {"alg": "ES256", "kid": b64url(kid), "typ": typ}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode())
        for part in (header, claims)
    ).encode()
    return PendingJws(signing_input, hashlib.sha256(signing_input).digest())


def open_jws(token: str, trust: KeyTrust, use: str, *, typ: str) -> dict[str, Any]:
    """The claims of a compact JWS signed by a key ``trust`` holds for ``use``."""
    parts = token.strip().split(".")
    if len(token) > MAX_TOKEN or len(parts) != 3:
        raise MalformedQr("not a compact JWS")
    try:
        header = json.loads(from_b64url(parts[0]))
        claims = json.loads(from_b64url(parts[1]))
        signature = from_b64url(parts[2])
        kid = from_b64url(header["kid"])
    except (ValueError, TypeError, KeyError):
        raise MalformedQr("not a compact JWS") from None
    if not isinstance(claims, dict) or header.get("alg") != "ES256" or header.get("typ") != typ:
        raise MalformedQr(f"not an ES256 {typ}")
    key = trust.key(kid, use)
    verify_raw(key.public_key, signature, f"{parts[0]}.{parts[1]}".encode())
    return claims

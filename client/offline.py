"""Checking a sealed proof without the gateway: the signature, the seal's chain to a
trusted root, the seal valid when it signed (the gateway's own :func:`verify_proof`).

What this cannot say is the proof's status now (pledged, revoked …): that is the
registry's, asked with :meth:`Client.verify`. Needs only cryptography and asn1crypto.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sealgate.client.errors import ProofRejected
from sealgate.client.models import TrustDocument
from sealgate.crypto.errors import CryptoError
from sealgate.crypto.verification import TrustList, verify_proof

__all__ = ["OfflineProof", "trust_list", "verify_offline"]


@dataclass(frozen=True, slots=True)
class OfflineProof:
    """What a sealed proof says, once its seal holds: ``content`` is the proof's JSON
    (code, type, issuer, holder in full, content, dates, endorsement)."""

    code: str
    seal_id: str
    unit_name: str
    unit_code: str
    signing_time: dt.datetime
    content: dict[str, Any] = field(repr=False)  # holds the holder's full identity number

    @property
    def holder_id(self) -> str:
        return str(self.content["holder"]["id"])


def trust_list(trust: TrustList | TrustDocument | str | bytes) -> TrustList:
    """A trust list from the gateway's trust document, a PEM bundle of roots, or as is.

    Take the roots from a source you trust (the city's published root, pinned), not only
    from the gateway you are checking.
    """
    if isinstance(trust, TrustList):
        return trust
    pem = trust.roots_pem if isinstance(trust, TrustDocument) else trust
    try:
        return TrustList.from_pem(pem)
    except CryptoError as exc:
        raise ProofRejected(f"unusable trust list: {exc}", type(exc).__name__) from None


def verify_offline(der: bytes, trust: TrustList | TrustDocument | str | bytes) -> OfflineProof:
    """Verify a sealed proof (CMS DER) against ``trust``; raise :class:`ProofRejected`
    naming the first check that failed."""
    roots = trust_list(trust)
    try:
        verified = verify_proof(bytes(der), roots)
    except CryptoError as exc:
        raise ProofRejected(f"the proof does not hold: {exc}", type(exc).__name__) from None
    return OfflineProof(
        code=verified.code,
        seal_id=verified.seal_id,
        unit_name=verified.unit_name,
        unit_code=verified.unit_code,
        signing_time=verified.signing_time,
        content=json.loads(verified.content),
    )

"""扫码: a QR payload checked without the gateway, against a trust list and a status list.

:func:`verify_qr` is the verifier's library call (``sealgate verify-qr`` wraps it): the
payload's signature by a key the trust list holds for QR payloads, its own expiry, then
the proof's status from the status list the payload names (fetched by the caller, from
the gateway or a CDN, and checked here: signed by a key held for status lists, for that
URI, not expired), and the proof's own dates. Failure of any check is an exception
(:class:`sealgate.crypto.errors.CoseError`); a proof that is not valid is a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealgate.crypto.key_trust import KeyTrust
from sealgate.crypto.qr_payload import QrClaims, read_payload
from sealgate.crypto.status_list import ListStatus, read_status_list
from sealgate.verify.validity import BadInstant, has_ended, has_started, instant

# What a verifier shows, by the list's value: the registry's statuses folded into 2 bits.
VERDICTS = {
    ListStatus.VALID: "valid",
    ListStatus.PLEDGED: "pledged",
    ListStatus.REVOKED_OR_ENDED: "revoked-or-ended",
    ListStatus.CHANGED: "changed",
}


@dataclass(frozen=True, slots=True)
class QrVerdict:
    claims: QrClaims
    status: str  # valid, pledged, revoked-or-ended, changed, expired, not-yet-valid
    status_list_issued_at: int


def verify_qr(text: str, trust: KeyTrust, status_list_token: bytes, *, now: float) -> QrVerdict:
    claims = read_payload(text, trust, now=now)
    listed = read_status_list(status_list_token, trust, uri=claims.status_list, now=now)
    status = VERDICTS[listed.status(claims.status_index)]
    if status in ("valid", "pledged"):
        status = _dated(claims, status, now)
    return QrVerdict(claims, status, listed.issued_at)


def _dated(claims: QrClaims, status: str, now: float) -> str:
    """``expired`` past ``valid_until``, ``not-yet-valid`` before ``valid_from`` (as
    :func:`sealgate.verify.registry.derived_status` does for the online answer)."""
    try:
        ends = None if claims.valid_until is None else instant(claims.valid_until, True)
    except BadInstant:
        ends = 0.0  # a date we cannot read ends nothing in the holder's favour
    if has_ended(ends, now):
        return "expired"
    if status == "valid" and not has_started(claims.valid_from, now):
        return "not-yet-valid"
    return status

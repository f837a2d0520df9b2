"""``POST /v1/verify/document``: a presented sealed proof, checked offline and against the
registry, and an answer that says what each verdict stands on.

A proof is the registered one when its *signed* content and signed attributes are those
of the proof registered under its *signed* code: not its whole DER, which another
encoding of the same signature (ECDSA's (r, n-s)) or an unsigned attribute would change
without changing what was sealed. The registered status of that code is always reported,
so a revoked proof shows ``revoked`` however it was re-encoded.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from sealgate.crypto.assessment import Assessment, RevocationCheck, TimestampCheck, assess
from sealgate.crypto.errors import UntrustedSeal
from sealgate.crypto.revocation import revocation_check
from sealgate.crypto.verification import VerifiedProof, signed_parts, verify_proof
from sealgate.gateway.catalog import CatalogSnapshot
from sealgate.gateway.instants import rfc3339
from sealgate.verify.code import CodeError, parse_code
from sealgate.verify.registry import ProofRecord, ProofStatus

#: What the answer's ``checked.registry`` says, by what the registry holds for the code.
REGISTERED = "registered: this is the proof registered under its code"
ANOTHER_PROOF = "not registered: its code is registered for another proof"
NOT_REGISTERED = "not registered: no proof under its code"


async def check_document(
    der: bytes,
    *,
    snapshot: CatalogSnapshot,
    record_of: Callable[[str], Awaitable[ProofRecord | None]],
    status_of: Callable[[str], Awaitable[ProofStatus | None]],
    now: float,
    timestamp: TimestampCheck | None = None,
    revocation: RevocationCheck | None = None,
) -> dict[str, Any]:
    """Verify ``der`` and judge it at its trusted time, then find its registered status.

    Raises :class:`sealgate.crypto.errors.ProofError` when the seal does not hold
    (:class:`~sealgate.crypto.errors.SealRevoked` when it was revoked by then).
    """
    verified = verify_proof(der, snapshot.trust)
    try:
        compact = parse_code(verified.code).compact
    except CodeError:
        compact = None
    record = None if compact is None else await record_of(compact)
    registered = record is not None and _same_proof(record.document, verified)
    if revocation is None and snapshot.revocations is not None:
        # The directory's record of revocations (the CRL's source); a registered proof is
        # judged at the registry's record of its issue, a time this gateway vouches for.
        issued = None
        if registered and record is not None:
            issued = dt.datetime.fromtimestamp(record.issued_at, dt.UTC)
        revocation = revocation_check(snapshot.revocations, vouched_time=issued)
    assessment = _assess(verified, snapshot, now, timestamp, revocation)
    status = None
    if record is not None:
        current = await status_of(record.code)
        status = (current or record).current_status(now).value
    registry = REGISTERED if registered else ANOTHER_PROOF if record is not None else NOT_REGISTERED
    answer: dict[str, Any] = {
        "seal": "valid",
        "code": verified.code,
        "seal_id": verified.seal_id,
        "issuer": {"unit_name": verified.unit_name, "unit_code": verified.unit_code},
        "signing_time": rfc3339(verified.signing_time.timestamp()),
        "judged_at": rfc3339(assessment.judged_at.timestamp()),
        "registered": registered,
        "status": status,
        "checked": assessment.checked(registry),
        "checked_at": rfc3339(now),
    }
    if (seal := snapshot.seals.get(verified.seal_id)) is not None:
        answer["seal_kind"] = seal.kind.value
    if (endorsement := verified.endorsement) is not None:
        # who extracted, who verified, when (宁波 第十四条): as the seal covers it
        answer["endorsement"] = {
            "extracting_unit": endorsement.extracting_unit,
            "verifying_unit": endorsement.verifying_unit,
            "extracted_at": None
            if endorsement.extracted_at is None
            else rfc3339(endorsement.extracted_at.timestamp()),
        }
    return answer


def _assess(
    verified: VerifiedProof,
    snapshot: CatalogSnapshot,
    now: float,
    timestamp: TimestampCheck | None,
    revocation: RevocationCheck | None,
) -> Assessment:
    try:
        retired_at = snapshot.retirements[verified.seal_certificate_der]
    except KeyError:
        # Issued by a trusted root, yet no seal of the directory's: not a seal of the city.
        raise UntrustedSeal("the seal certificate is not one of the directory's seals") from None
    return assess(
        verified,
        now=dt.datetime.fromtimestamp(now, dt.UTC),
        retired_at=retired_at,
        retirement_source="the directory",
        timestamp=timestamp,
        revocation=revocation,
    )


def _same_proof(registered_der: bytes, verified: VerifiedProof) -> bool:
    """Whether the registered proof signed the same content with the same attributes."""
    content, attributes = signed_parts(registered_der)
    return hmac.compare_digest(content, verified.content) and hmac.compare_digest(
        attributes, verified.signed_attributes
    )

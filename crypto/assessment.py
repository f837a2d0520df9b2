"""What an offline check finds beyond a proof's signature, and what it says it checked.

:func:`~sealgate.crypto.verification.verify_proof` proves who signed what. A signature
alone does not say *when*: the signing time is whatever the signer wrote, so a retired
or stolen key can sign today's forgery dated any day. :func:`assess` judges the time:

- the time the proof is judged at comes from its RFC 3161 signature timestamp when a
  timestamp check is given (``timestamp``; the TSA's trust is that check's), else from
  the signing time, said to be asserted by the signer;
- a signing time (or timestamp) in the future is refused, beyond :data:`CLOCK_SKEW`;
- one after the key's retirement is refused: the key no longer sealed for the city then;
- the seal certificate must be valid at a timestamp's time (verify_proof already held
  it to the signing time);
- ``revocation``, when given, judges the seal certificate at that time (a CRL).

The answer (:class:`Assessment`) names each source, so a verifier knows what a ``VALID``
stands on, and what was *not* checked (docs/design.md §5.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sealgate.crypto.certificates import certificate_validity
from sealgate.crypto.errors import (
    SealNotValidAtSigningTime,
    SignedAfterRetirement,
    SignedInTheFuture,
)
from sealgate.crypto.verification import VerifiedProof

__all__ = [
    "CLOCK_SKEW",
    "NOT_CHECKED_OFFLINE",
    "Assessment",
    "RevocationCheck",
    "TimestampCheck",
    "assess",
]

#: How far a signer's clock may run ahead of the checker's (both should keep NTP time).
CLOCK_SKEW = timedelta(minutes=5)

#: What an answer says of a source it had no way to consult.
NOT_CHECKED_OFFLINE = "not checked offline"
SIGNING_TIME = "signing-time, asserted by the signer"
TIMESTAMP = "RFC 3161 signature timestamp"
_UNCHECKED_TOKEN = f"{SIGNING_TIME} (its timestamp token was not checked)"

#: A check of the proof's signature timestamp token (``VerifiedProof.timestamp_token``
#: over ``VerifiedProof.signature``): the time it vouches for, or a ProofError.
TimestampCheck = Callable[[VerifiedProof], datetime]
#: A check of the seal certificate (DER) at a time: a description of the source it
#: consulted (e.g. which CRL), or a ProofError when the certificate was revoked by then.
RevocationCheck = Callable[[bytes, datetime], str]


@dataclass(frozen=True, slots=True)
class Assessment:
    """The time a proof is judged at, and the sources each judgement stands on."""

    judged_at: datetime
    time_source: str
    retirement: str
    revocation: str

    def checked(self, registry: str = NOT_CHECKED_OFFLINE) -> dict[str, str]:
        """What was checked, as answers show it; ``registry``: the registry's word."""
        return {
            "time": self.time_source,
            "retirement": self.retirement,
            "revocation": self.revocation,
            "registry": registry,
        }


def assess(
    proof: VerifiedProof,
    *,
    now: datetime,
    retired_at: datetime | None,
    retirement_source: str | None,
    timestamp: TimestampCheck | None = None,
    revocation: RevocationCheck | None = None,
) -> Assessment:
    """Judge ``proof`` (already verified) at its trusted time; raise the first failing
    check's :class:`ProofError`.

    ``retired_at``: when the seal key stopped sealing (``None``: still active), as
    ``retirement_source`` says (the directory, a signed trust document; ``None``: no
    source of key states was consulted, and ``retired_at`` is ignored).
    """
    signing_time = proof.signing_time
    if signing_time > now + CLOCK_SKEW:
        raise SignedInTheFuture(f"signing time {signing_time.isoformat()} is in the future")
    if proof.timestamp_token is None or timestamp is None:
        judged_at = signing_time
        time_source = SIGNING_TIME if proof.timestamp_token is None else _UNCHECKED_TOKEN
    else:
        judged_at, time_source = timestamp(proof), TIMESTAMP
        if judged_at > now + CLOCK_SKEW:
            raise SignedInTheFuture(f"timestamp {judged_at.isoformat()} is in the future")
        not_before, not_after = certificate_validity(proof.seal_certificate_der)
        if not not_before <= judged_at <= not_after:
            raise SealNotValidAtSigningTime(
                f"timestamp {judged_at.isoformat()} outside the seal certificate's validity"
            )
        if signing_time > judged_at + CLOCK_SKEW:
            raise SignedInTheFuture("the signing time is after the proof's timestamp")
    if retirement_source is None:
        retirement = NOT_CHECKED_OFFLINE
    elif retired_at is not None:
        latest = max(signing_time, judged_at)
        # The retirement was recorded by another machine's clock, and gateways take a
        # rotation within seconds (docs/design.md §7.2): the same slack as for the future.
        if latest > retired_at + CLOCK_SKEW:
            raise SignedAfterRetirement(
                f"signed {latest.isoformat()}, after its seal key was retired"
                f" ({retired_at.isoformat()})"
            )
        retirement = f"key retired {retired_at.isoformat()}, signed before ({retirement_source})"
    else:
        retirement = f"key active ({retirement_source})"
    revocation_source = (
        NOT_CHECKED_OFFLINE
        if revocation is None
        else revocation(proof.seal_certificate_der, judged_at)
    )
    return Assessment(judged_at, time_source, retirement, revocation_source)

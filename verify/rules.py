"""The registry's decisions on a status change, as pure functions both backends apply.

A backend reads what a decision needs inside the transaction that will write the change
(the proof's current status, and for a supersession what it knows of the newer proof),
asks :func:`check_status_change`, and writes only if nothing was raised. The order of the
checks is the contract: not found, then wrong office, then the lifecycle (the dates
included: expiry, and a start still ahead), then the supersession.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealgate.verify.lifecycle import InvalidSupersession, check_transition
from sealgate.verify.registry import (
    ProofNotFound,
    ProofStatus,
    Status,
    StatusChangeRequest,
    WrongOffice,
    derived_status,
)


@dataclass(frozen=True, slots=True)
class Successor:
    """What a supersession needs to know of the newer proof, against the old one."""

    same_holder_and_type: bool
    status: Status
    expires_at: float | None
    issued_later: bool  # issued after the proof it replaces
    valid_from: str = ""  # "" (unknown) counts as already in force


def check_supersession(code: str, newer: str, successor: Successor | None, now: float) -> None:
    """Raise :class:`InvalidSupersession` unless ``newer`` may supersede ``code``: another,
    registered, currently valid proof of the same holder and type, issued later.
    ``successor`` is ``None`` when no proof has the code ``newer``."""
    if newer == code:
        raise InvalidSupersession("a proof cannot supersede itself")
    if successor is None:
        raise InvalidSupersession("superseded_by names no registered proof")
    if not successor.same_holder_and_type:
        raise InvalidSupersession("superseded_by is a proof of another holder or type")
    # Valid as a checker would see it now: not expired, and already in force (a proof not
    # yet valid would leave the holder with none in force until it starts).
    seen = derived_status(successor.status, successor.valid_from, successor.expires_at, now)
    if seen is not Status.VALID:
        raise InvalidSupersession(f"superseded_by is not a valid proof (it is {seen.value})")
    if not successor.issued_later:
        raise InvalidSupersession("superseded_by is not newer than the proof it replaces")


def check_status_change(
    change: StatusChangeRequest, current: ProofStatus | None, successor: Successor | None
) -> ProofStatus:
    """Raise unless ``change`` may be applied to the proof now ``current`` (``None``: no
    proof has the code); returns ``current``. ``successor`` describes
    ``change.superseded_by`` when it is given (see :func:`check_supersession`)."""
    if current is None:
        raise ProofNotFound("no proof has that code")
    if current.owner != change.office:  # the data owner's, whoever sealed it
        raise WrongOffice("the proof was issued by another office")
    seen = current.current_status(change.at)  # the dates, derived as every answer does
    check_transition(
        current.status,
        change.status,
        expired=seen is Status.EXPIRED,
        not_yet_valid=seen is Status.NOT_YET_VALID,
        superseded_by=change.superseded_by,
    )
    if change.superseded_by is not None:
        check_supersession(change.code, change.superseded_by, successor, change.at)
    return current

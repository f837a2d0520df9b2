"""The status lifecycle of a proof (docs/design.md §7.1, 益阳 第十八条).

Pure rules, no I/O: the registry applies them inside the transaction that changes the
status, so two issuers racing cannot both move a proof out of the same state.

::

    valid ⇄ pledged            质押, and release
    valid → changed            变更: superseded by a newer proof of the same holder and type
    valid | pledged | changed → revoked | cancelled | abolished     吊销 / 注销 / 废止 (terminal)
    not-yet-valid              before valid_from: derived, never set; cannot be pledged
    expired                    有效期届满: derived from valid_until, never set

A proof is sealed only if its validity has not already ended, unless the city asks for
archival issuance (a proof recorded after the fact: it is sealed, and shows ``expired``).

Exceptions::

    LifecycleError
    ├── TerminalStatus         the proof is revoked, cancelled or abolished: nothing follows
    ├── TransitionNotAllowed   not a step of the lifecycle from the current status
    │   └── NotYetValid        the step needs the proof in force, and valid_from is ahead
    ├── InvalidSupersession    ``superseded_by`` missing, present without ``changed``, or not
    │                          a newer valid proof of the same holder and type
    └── ValidityEnded          sealing a proof whose valid_until has already passed
"""

from __future__ import annotations

from sealgate.errors import Error
from sealgate.verify.registry import Status
from sealgate.verify.validity import has_ended

# Statuses the dates decide at each answer: never stored, never set by a change.
DERIVED = frozenset({Status.NOT_YET_VALID, Status.EXPIRED})
TERMINAL = frozenset({Status.REVOKED, Status.CANCELLED, Status.ABOLISHED})
SETTABLE = frozenset(
    {
        Status.VALID,
        Status.PLEDGED,
        Status.CHANGED,
        Status.REVOKED,
        Status.CANCELLED,
        Status.ABOLISHED,
    }
)
_NEXT: dict[Status, frozenset[Status]] = {
    Status.VALID: frozenset({Status.PLEDGED, Status.CHANGED}) | TERMINAL,
    Status.PLEDGED: frozenset({Status.VALID}) | TERMINAL,
    Status.CHANGED: TERMINAL,
}
# Steps that put a proof (back) into use make no sense once it has expired.
_NOT_AFTER_EXPIRY = frozenset({Status.PLEDGED, Status.CHANGED})
# A pledge (质押) encumbers a proof in force; one not yet in force cannot be pledged. It may
# be superseded (a correction before it starts) or ended like any other.
_NOT_BEFORE_START = frozenset({Status.PLEDGED})


class LifecycleError(Error):
    """Base of the lifecycle's refusals."""


class TerminalStatus(LifecycleError):
    """The proof's status is terminal."""


class TransitionNotAllowed(LifecycleError):
    """The requested status does not follow from the current one."""


class NotYetValid(TransitionNotAllowed):
    """The step needs the proof in force, and its ``valid_from`` has not come yet."""


class InvalidSupersession(LifecycleError):
    """``superseded_by`` does not name a valid newer proof of the same holder and type."""


class ValidityEnded(LifecycleError):
    """A proof to seal whose validity has already ended (``field`` names its valid_until)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_transition(
    current: Status,
    target: Status,
    *,
    expired: bool,
    superseded_by: str | None,
    not_yet_valid: bool = False,
) -> None:
    """Raise unless ``current → target`` is a step of the lifecycle.

    ``current`` is the stored status (never a derived one); ``expired`` says whether the
    proof is past its ``valid_until``, ``not_yet_valid`` whether its ``valid_from`` is
    still ahead.
    """
    if target not in SETTABLE:
        raise TransitionNotAllowed(f"{target.value!r} cannot be set; it is derived")
    if current in TERMINAL:
        raise TerminalStatus(f"the proof is {current.value}; no change follows")
    if target is Status.CHANGED and superseded_by is None:
        raise InvalidSupersession("'changed' needs superseded_by: the newer proof's code")
    if target is not Status.CHANGED and superseded_by is not None:
        raise InvalidSupersession("superseded_by goes only with status 'changed'")
    if target not in _NEXT.get(current, frozenset()):
        raise TransitionNotAllowed(f"a {current.value} proof cannot become {target.value}")
    if expired and target in _NOT_AFTER_EXPIRY:
        raise TransitionNotAllowed(f"the proof has expired; it cannot become {target.value}")
    if not_yet_valid and target in _NOT_BEFORE_START:
        raise NotYetValid(f"the proof is not valid yet; it cannot become {target.value}")


def check_issuance(
    expires_at: float | None, now: float, *, archival: bool, field: str = "valid_until"
) -> None:
    """Raise :class:`ValidityEnded` when a proof ending at ``expires_at`` would be sealed
    already ended at ``now``, unless the city issues for the archive (``archival``): then
    it is sealed, and every answer shows it ``expired`` from the start."""
    if not archival and has_ended(expires_at, now):
        raise ValidityEnded(field, "has already passed: a proof cannot be sealed already ended")

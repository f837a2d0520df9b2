"""The status lifecycle of a proof (docs/design.md §7.1, 益阳 第十八条).

Pure rules, no I/O: the registry applies them inside the transaction that changes the
status, so two issuers racing cannot both move a proof out of the same state.

::

    valid ⇄ pledged            质押, and release
    valid → changed            变更: superseded by a newer proof of the same holder and type
    valid | pledged | changed → revoked | cancelled | abolished     吊销 / 注销 / 废止 (terminal)
    expired                    有效期届满: derived from valid_until, never set

Exceptions::

    LifecycleError
    ├── TerminalStatus         the proof is revoked, cancelled or abolished: nothing follows
    ├── TransitionNotAllowed   not a step of the lifecycle from the current status
    └── InvalidSupersession    ``superseded_by`` missing, present without ``changed``, or not
                               a newer valid proof of the same holder and type
"""

from __future__ import annotations

from sealgate.errors import Error
from sealgate.verify.registry import Status

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


class LifecycleError(Error):
    """Base of the lifecycle's refusals."""


class TerminalStatus(LifecycleError):
    """The proof's status is terminal."""


class TransitionNotAllowed(LifecycleError):
    """The requested status does not follow from the current one."""


class InvalidSupersession(LifecycleError):
    """``superseded_by`` does not name a valid newer proof of the same holder and type."""


def check_transition(
    current: Status, target: Status, *, expired: bool, superseded_by: str | None
) -> None:
    """Raise unless ``current → target`` is a step of the lifecycle.

    ``current`` is the stored status (never ``expired``); ``expired`` says whether the
    proof is past its ``valid_until``.
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

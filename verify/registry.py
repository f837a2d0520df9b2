"""The registry of issued proofs: the source of truth every cache copies from.

:class:`Registry` is the interface; :mod:`sealgate.verify.sqlite` implements it on SQLite (WAL) for
the embedded default, and a PostgreSQL backend implements the same contract at city
scale. Every write method returns only once the write is durable: the gateway answers
201 after that and never before.

Exceptions::

    RegistryError
    ├── CodeTaken              the code is already registered (re-seal with a new code)
    ├── IdempotencyConflict    the key was used before with a different request
    ├── ProofNotFound          no proof has that code
    ├── WrongOffice            the proof belongs to another office
    ├── RegistryUnavailable    the store cannot be reached or written; retry later
    └── RegistryCorrupted      the store's data is damaged; no retry helps: restore it

Status changes are also refused with :mod:`sealgate.verify.lifecycle`'s errors.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from sealgate.errors import Error
from sealgate.verify.validity import has_ended, has_started

if TYPE_CHECKING:  # consents.py derives its errors from this module's
    from sealgate.verify.consents import Consent


class RegistryError(Error):
    """Base of the registry's errors."""


class CodeTaken(RegistryError):
    """The verification code is already registered."""


class IdempotencyConflict(RegistryError):
    """The idempotency key was first used with a different request body."""


class ProofNotFound(RegistryError):
    """No proof is registered under the code."""


class WrongOffice(RegistryError):
    """The proof was issued by another office than the one asking."""


class RegistryUnavailable(RegistryError):
    """The store failed; the request may be retried later."""


class RegistryCorrupted(RegistryError):
    """The store's engine found its data damaged ("database disk image is malformed"):
    retrying cannot help until the operator restores the database from a backup."""


class Status(enum.StrEnum):
    VALID = "valid"
    PLEDGED = "pledged"
    CHANGED = "changed"
    NOT_YET_VALID = "not-yet-valid"  # derived, never stored: before valid_from
    EXPIRED = "expired"  # derived, never stored: from valid_until on
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    ABOLISHED = "abolished"


def derived_status(stored: Status, valid_from: str, expires_at: float | None, now: float) -> Status:
    """The status a checker sees at ``now``: the one place the dates are applied.

    ``expired`` once a valid or pledged proof is past ``valid_until``; ``not-yet-valid``
    while a valid proof's ``valid_from`` is still ahead (in the city's time zone for a
    date: :mod:`sealgate.verify.validity`); else as stored. A proof cannot be pledged
    before it starts, so only ``valid`` is ever shown as not yet valid; ``changed`` and
    the terminal statuses say more than either date and are shown as they are.
    """
    if stored is Status.VALID:
        if has_ended(expires_at, now):
            return Status.EXPIRED
        if not has_started(valid_from, now):
            return Status.NOT_YET_VALID
    elif stored is Status.PLEDGED and has_ended(expires_at, now):
        return Status.EXPIRED
    return stored


@dataclass(frozen=True, slots=True)
class ProofStatus:
    """What a status check needs of a proof: the record without the document.

    This is what caches hold. ``version`` counts the status changes the proof has had,
    so a copy can be told from a newer one.
    """

    code: str
    seal_id: str
    unit_name: str
    unit_code: str
    type: str
    holder_kind: str
    holder_name_masked: str
    holder_id_masked: str
    valid_from: str
    valid_until: str | None
    expires_at: float | None
    issued_at: float
    status: Status
    status_changed_at: float
    superseded_by: str | None
    version: int
    # The office that owns the proof's data when it is not the sealing unit (a platform
    # seal's proof): it, not the seal's unit, changes the proof's status (read from the
    # registry for that, never from a copy).
    data_owner: str | None = None
    # A request's answer: the endorsement the proof carries (宁波 第十四条), the units by
    # name; extracted at ``issued_at``. Both None: not endorsed.
    extracting_unit: str | None = None
    verifying_unit: str | None = None

    @property
    def owner(self) -> str:
        """The office whose proof this is: its data owner, else the sealing unit."""
        return self.data_owner or self.unit_code

    @property
    def endorsed(self) -> bool:
        return self.extracting_unit is not None or self.verifying_unit is not None

    def current_status(self, now: float) -> Status:
        """The status a checker sees: ``expired`` and ``not-yet-valid`` are derived,
        never stored."""
        return derived_status(self.status, self.valid_from, self.expires_at, now)


@dataclass(frozen=True, slots=True)
class ProofRecord:
    """One issued proof as the registry keeps it.

    The holder appears only masked, plus ``holder_key``, a keyed hash of the holder id
    used for lookups, so a leaked registry does not list identity numbers in clear.
    Times are Unix seconds (UTC) as floats; ``valid_until`` may be ``None`` (open-ended).
    """

    code: str  # compact form, the primary key
    seal_id: str
    unit_name: str
    unit_code: str
    type: str
    holder_kind: str
    holder_name_masked: str
    holder_id_masked: str
    holder_key: bytes
    valid_from: str  # as requested (RFC 3339 date or date-time)
    valid_until: str | None
    expires_at: float | None  # valid_until as an instant, for deriving "expired"
    issued_at: float
    status: Status
    status_changed_at: float
    superseded_by: str | None
    signer_client: str
    document: bytes  # the sealed proof, DER CMS
    data_owner: str | None = None  # see ProofStatus
    extracting_unit: str | None = None  # see ProofStatus
    verifying_unit: str | None = None

    @property
    def owner(self) -> str:
        return self.data_owner or self.unit_code

    @property
    def endorsed(self) -> bool:
        return self.extracting_unit is not None or self.verifying_unit is not None

    def current_status(self, now: float) -> Status:
        """The status a checker sees: ``expired`` and ``not-yet-valid`` are derived,
        never stored."""
        return derived_status(self.status, self.valid_from, self.expires_at, now)


@dataclass(frozen=True, slots=True)
class StatusChangeRequest:
    """An issuing office's request to change a proof's status."""

    code: str  # compact
    office: str  # unit code of the office asking; must be the proof's
    status: Status
    reason: str
    superseded_by: str | None  # compact code of the newer proof, for ``changed``
    client_id: str
    at: float


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of a proof's status history: who changed what, when and why."""

    seq: int  # position in the registry's change log, increasing
    code: str
    from_status: Status
    to_status: Status
    reason: str
    superseded_by: str | None
    client_id: str
    changed_at: float


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """What makes a retried request the same: client, key and a digest of the body."""

    client_id: str
    key: str
    request_digest: bytes


@dataclass(frozen=True, slots=True)
class IdempotentResult:
    request_digest: bytes
    codes: tuple[str, ...]


class Registry(ABC):
    """Issued proofs and the idempotency keys that produced them."""

    @abstractmethod
    async def register(
        self, proofs: list[ProofRecord], idempotency: IdempotentRequest | None = None
    ) -> None:
        """Store ``proofs`` atomically, with the idempotency key if given; durable on return.

        Raises :class:`CodeTaken` if a code exists, :class:`IdempotencyConflict` if the
        key is already stored (whatever its body: the caller re-reads it with
        :meth:`idempotent_result`), :class:`RegistryUnavailable` on store failure.
        """

    @abstractmethod
    async def get(self, code: str) -> ProofRecord | None:
        """The proof registered under the compact code, or ``None``."""

    @abstractmethod
    async def get_status(self, code: str) -> ProofStatus | None:
        """The status facts of a proof (no document), or ``None``: what caches copy."""

    @abstractmethod
    async def change_status(self, change: StatusChangeRequest) -> ProofStatus:
        """Apply a status change atomically and record it in the history; durable on return.

        Raises :class:`ProofNotFound`, :class:`WrongOffice`, or a
        :class:`sealgate.verify.lifecycle.LifecycleError` when the lifecycle forbids the step.
        """

    @abstractmethod
    async def history(self, code: str) -> list[StatusChange]:
        """Every status change of a proof, oldest first."""

    @abstractmethod
    async def changes_since(self, seq: int, limit: int = 1000) -> list[StatusChange]:
        """The change log after ``seq``, in order: how every gateway learns of changes."""

    @abstractmethod
    async def last_change(self) -> int:
        """The newest ``seq`` of the change log (0 if empty)."""

    @abstractmethod
    async def find_by_holder(self, holder_key: bytes, type: str) -> list[ProofStatus]:
        """The holder's proofs of that type whose stored status is ``valid``."""

    @abstractmethod
    async def proofs_of_holder(self, holder_key: bytes) -> list[ProofStatus]:
        """Every proof of the holder (at most 1,000), newest first, in any status."""

    @abstractmethod
    async def status_slot(self, code: str) -> int:
        """The proof's index in the status lists (docs/design.md §13), given it the first
        time it is asked for, durably; :class:`ProofNotFound` if no proof has the code."""

    @abstractmethod
    async def slots_since(self, index: int, limit: int = 10_000) -> list[tuple[int, Status]]:
        """The indexes given after ``index``, in order, with their proofs' stored status."""

    @abstractmethod
    async def slots_of(self, codes: list[str]) -> dict[str, int]:
        """The indexes of those of ``codes`` that have one."""

    @abstractmethod
    async def add_consent(self, consent: Consent) -> None:
        """Store a holder's consent; durable on return."""

    @abstractmethod
    async def use_consent(self, consent_id: str, now: float) -> Consent:
        """Take one use of a consent atomically and return it as it was before;
        :class:`~sealgate.verify.consents.ConsentNotUsable` if it is unknown, revoked,
        expired or used up."""

    @abstractmethod
    async def consents_of(self, holder_key: bytes) -> list[Consent]:
        """The holder's consents, oldest first, revoked and expired ones included."""

    @abstractmethod
    async def revoke_consent(self, consent_id: str, holder_key: bytes, now: float) -> None:
        """Revoke the holder's consent; durable on return.
        :class:`~sealgate.verify.consents.ConsentNotFound` if the holder has no such one
        not already revoked."""

    @abstractmethod
    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        """What an idempotency key produced, or ``None`` if it is unused."""

    @abstractmethod
    async def count(self) -> int:
        """How many proofs are registered."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`RegistryUnavailable` unless the store answers."""

    @property
    def corruption(self) -> str | None:
        """The engine's message if it has reported the store's data damaged, else
        ``None``. Readiness says it; a backend without corruption detection has none."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release connections."""

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

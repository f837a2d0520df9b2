"""The registry of issued proofs: the source of truth every cache copies from.

:class:`Registry` is the interface; :mod:`verify.sqlite` implements it on SQLite (WAL) for
the embedded default, and a PostgreSQL backend implements the same contract at city
scale. Every write method returns only once the write is durable: the gateway answers
201 after that and never before.

Exceptions::

    RegistryError
    ├── CodeTaken              the code is already registered (re-seal with a new code)
    ├── IdempotencyConflict    the key was used before with a different request
    └── RegistryUnavailable    the store cannot be reached or written; retry later
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType


class RegistryError(Exception):
    """Base of the registry's errors."""


class CodeTaken(RegistryError):
    """The verification code is already registered."""


class IdempotencyConflict(RegistryError):
    """The idempotency key was first used with a different request body."""


class RegistryUnavailable(RegistryError):
    """The store failed; the request may be retried later."""


class Status(enum.StrEnum):
    VALID = "valid"
    PLEDGED = "pledged"
    CHANGED = "changed"
    EXPIRED = "expired"
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    ABOLISHED = "abolished"


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

    def current_status(self, now: float) -> Status:
        """The status a checker sees: ``expired`` is derived, never stored."""
        if self.status in (Status.VALID, Status.PLEDGED) and (
            self.expires_at is not None and now >= self.expires_at
        ):
            return Status.EXPIRED
        return self.status


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
    async def idempotent_result(self, client_id: str, key: str) -> IdempotentResult | None:
        """What an idempotency key produced, or ``None`` if it is unused."""

    @abstractmethod
    async def count(self) -> int:
        """How many proofs are registered."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`RegistryUnavailable` unless the store answers."""

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

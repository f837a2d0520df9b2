"""Who may do what: the seals an office holds and the clients that call the gateway.

Kept in the same store as the registry (one SQLite file, or one PostgreSQL database at
city scale: :mod:`sealgate.verify.sqlite`, :mod:`sealgate.verify.postgres`) so that every
gateway instance sees the same seals and clients. Client tokens are stored only as SHA-256
digests: they are 256-bit random values, so a fast hash suffices and a leaked store yields
no usable token.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sealgate.errors import Error

if TYPE_CHECKING:  # matters.py imports this module's errors
    from sealgate.verify.matters import Matter


class DirectoryError(Error):
    """Base of the directory's errors."""


class NotFound(DirectoryError):
    """No seal or client with that id."""


class AlreadyExists(DirectoryError):
    """A seal or client with that id already exists."""


class DirectoryUnavailable(DirectoryError):
    """The store cannot be reached or read; retry later."""


class SealKind(enum.StrEnum):
    """The two seal kinds of 益阳 第十七条 (宁波 第十四条 names in the comments)."""

    PROOF = "proof"  # 电子证明专用章 (宁波: 电子证明共享信息专用章)
    VERIFICATION = "verification"  # 查询核验专用章 (宁波: 电子证明核实信息专用章)

    @property
    def chinese_name(self) -> str:
        return _KIND_NAMES[self]


_KIND_NAMES = {SealKind.PROOF: "电子证明专用章", SealKind.VERIFICATION: "查询核验专用章"}


class SealScope(enum.StrEnum):
    """Whose seal it is (宁波 第十五条: made and managed centrally, used by units within
    the rights the platform grants)."""

    UNIT = "unit"  # one office's own seal (the default)
    PLATFORM = "platform"  # the city's, used by the units (signers) granted it


class Role(enum.StrEnum):
    SIGNER = "signer"
    ISSUER = "issuer"
    VERIFIER = "verifier"
    ADMIN = "admin"
    # an office's system that sends verification requests (协查核验, 在线开具)
    REQUESTER = "requester"
    # the city's citizen platform (个人空间), which has authenticated the citizen: shows
    # holders their proofs and the requests about them, and records their consents
    PORTAL = "portal"


class KeyState(enum.StrEnum):
    ACTIVE = "active"  # new proofs are sealed with it
    RETIRED = "retired"  # rotated out; proofs sealed with it before then still verify
    REVOKED = "revoked"  # its certificate is on the root's CRL (docs/design.md §7.2)


class RevocationReason(enum.StrEnum):
    """The CRLReason values (RFC 5280 §5.3.1) that apply to a seal, by their RFC names."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"


@dataclass(frozen=True, slots=True)
class SealKey:
    seal_id: str
    version: int
    key_label: str  # the label of the key in the keystore
    certificate: bytes  # DER, issued by the city root
    state: KeyState
    created_at: float
    # When ``seal rotate`` retired it; the retired key is destroyed in the token once
    # ``destroy_after`` has passed (``destroyed_at`` then says when it was).
    retired_at: float | None = None
    destroy_after: float | None = None
    destroyed_at: float | None = None
    # When its certificate was revoked, why, and since when the key is known (or feared)
    # to be compromised (the CRL's invalidityDate); proofs made before that stand.
    revoked_at: float | None = None
    revocation_reason: RevocationReason | None = None
    invalid_since: float | None = None


@dataclass(frozen=True, slots=True)
class IssuedCrl:
    """A CRL the city root issued (DER), with its number and currency."""

    number: int
    der: bytes
    this_update: float
    next_update: float


@dataclass(frozen=True, slots=True)
class Seal:
    seal_id: str
    kind: SealKind
    unit_name: str
    unit_code: str  # 统一社会信用代码 of the office
    created_at: float
    keys: tuple[SealKey, ...]  # every version, oldest first
    # `sealgate seal suspend` (misuse: 益阳 第二十二条(五), 宁波 第二十条): nothing is sealed
    # with it until it is resumed; what it sealed keeps verifying.
    suspended_at: float | None = None
    scope: SealScope = SealScope.UNIT

    def retired_at(self, key: SealKey) -> dt.datetime | None:
        """When ``key`` stopped sealing, ``None`` while it is active: a retired key's end is
        the creation of the version after it (``seal rotate`` makes the new key and
        retires the old in one step)."""
        if key.state is KeyState.ACTIVE:
            return None
        if key.retired_at is not None:  # recorded by seal rotate
            return dt.datetime.fromtimestamp(key.retired_at, dt.UTC)
        if key.state is KeyState.REVOKED and key.revoked_at is not None:
            # Revoked while active: it sealed nothing after (its CRL entry judges before).
            return dt.datetime.fromtimestamp(key.revoked_at, dt.UTC)
        later = [k.created_at for k in self.keys if k.version > key.version]
        # A retired key with no later version (not made by sealgate): ended when it began.
        return dt.datetime.fromtimestamp(min(later, default=key.created_at), dt.UTC)

    @property
    def active_key(self) -> SealKey:
        for key in reversed(self.keys):
            if key.state is KeyState.ACTIVE:
                return key
        raise NotFound(f"seal {self.seal_id} has no active key")


@dataclass(frozen=True, slots=True)
class LookupLimit:
    """How many failed lookups a client may make, and over what window they drain: a
    bucket of ``failures`` emptying at ``failures / window_seconds`` per second."""

    failures: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.failures < 1 or not self.window_seconds > 0:
            raise ValueError("a lookup limit needs at least 1 failure and a positive window")

    @property
    def drain_per_second(self) -> float:
        return self.failures / self.window_seconds


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    role: Role
    office: str | None  # unit code; issuers change only their office's proofs
    seals: frozenset[str]  # seal ids a signer may use
    purposes: frozenset[str]  # matters (docs/design.md §17) a verifier may check codes for
    created_at: float
    # set with `sealgate client set-limits`; None: the city's default
    lookup_limit: LookupLimit | None = None


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Directory(ABC):
    """Seals and clients. Blocking calls: the gateway runs them off the event loop."""

    @abstractmethod
    def set_lookup_limit(self, client_id: str, limit: LookupLimit | None) -> None:
        """Give a client its own limit on failed lookups (``None``: the city's default).
        Raises :class:`NotFound`."""

    @abstractmethod
    def add_seal(self, seal: Seal) -> None:
        """Store a new seal with its first key. Raises :class:`AlreadyExists`."""

    @abstractmethod
    def add_seal_key(self, key: SealKey, *, destroy_after: float | None = None) -> None:
        """Add a key version to a seal and retire the active versions before it, as of
        the new key's ``created_at``; their keys are to be destroyed after
        ``destroy_after`` (default: at once)."""

    @abstractmethod
    def revoke_seal_keys(
        self,
        seal_id: str,
        *,
        version: int | None,
        at: float,
        reason: RevocationReason,
        invalid_since: float | None,
    ) -> list[SealKey]:
        """Revoke one key version of a seal (or, ``None``, every one not yet revoked);
        returns the keys revoked now. Raises :class:`NotFound`."""

    @abstractmethod
    def key_destroyed(self, key_label: str, at: float) -> None:
        """Record that a retired or revoked key's private half was destroyed."""

    @abstractmethod
    def add_crl(self, crl: IssuedCrl) -> None:
        """Keep a CRL the root issued. Raises :class:`AlreadyExists` for a number taken."""

    @abstractmethod
    def latest_crl(self) -> IssuedCrl | None:
        """The CRL with the highest number, if any was issued."""

    @abstractmethod
    def seal(self, seal_id: str) -> Seal:
        """The seal with this id. Raises :class:`NotFound`."""

    @abstractmethod
    def seals(self) -> list[Seal]:
        """Every seal, by id."""

    @abstractmethod
    def suspend_seal(self, seal_id: str, at: float | None) -> None:
        """Suspend a seal from ``at`` (``None``: resume it). Raises :class:`NotFound`."""

    @abstractmethod
    def load_calendar_year(self, year: int, days: str) -> None:
        """Store a year of the working-day calendar (its JSON), replacing a loaded one."""

    @abstractmethod
    def calendar_years(self) -> list[str]:
        """The loaded calendar years' JSON, by year."""

    @abstractmethod
    def add_root(self, certificate: bytes, key_label: str) -> None:
        """Trust a city root CA certificate (DER) whose key has this label."""

    @abstractmethod
    def roots(self) -> list[tuple[bytes, str]]:
        """The trusted root certificates (DER) with their key labels, oldest first."""

    @abstractmethod
    def add_trust_document(self, version: int, document: bytes) -> None:
        """Store a signed trust document (sealgate.crypto.trust_document) as ``version``.
        Raises :class:`AlreadyExists` when that version is taken (a publication raced)."""

    @abstractmethod
    def trust_document(self) -> tuple[int, bytes] | None:
        """The newest trust document with its version, ``None`` before the first."""

    @abstractmethod
    def add_client(self, client: Client, token: str) -> None:
        """Store a client and the digest of its token. Raises :class:`AlreadyExists`."""

    @abstractmethod
    def remove_client(self, client_id: str) -> None:
        """Remove a client with its grants: its token authenticates no more (serving
        gateways notice within their cache's lifetime). Raises :class:`NotFound`."""

    @abstractmethod
    def set_client_grants(
        self,
        client_id: str,
        *,
        role: Role,
        office: str | None,
        seals: frozenset[str],
        purposes: frozenset[str],
    ) -> None:
        """Replace a client's role, office, seals and purposes (its token, name and limit
        stay): serving gateways notice within their cache's lifetime. Raises
        :class:`NotFound`, or :class:`AlreadyExists` for a seal the directory lacks."""

    @abstractmethod
    def client(self, client_id: str) -> Client:
        """The client with this id. Raises :class:`NotFound`."""

    @abstractmethod
    def client_by_token(self, token: str) -> Client | None:
        """The client holding this bearer token, or ``None``."""

    @abstractmethod
    def clients(self) -> list[Client]:
        """Every client, by id."""

    @abstractmethod
    def add_matter(self, matter: Matter) -> None:
        """Add a matter to the city's table (docs/design.md §17). Raises
        :class:`AlreadyExists`."""

    @abstractmethod
    def remove_matter(self, matter_id: str) -> None:
        """Remove a matter no client is granted. Raises :class:`NotFound`, or
        :class:`~sealgate.verify.matters.MatterInUse` naming the clients granted it."""

    @abstractmethod
    def matters(self) -> list[Matter]:
        """The city's table of matters, by id."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's connection."""

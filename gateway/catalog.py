"""The seals a gateway process can use, their sealers, and the trust document it serves.

Loaded from the :class:`~sealgate.verify.directory.Directory` at start and refreshed in the
background, so a ``sealgate seal rotate`` or ``seal create`` run beside a serving gateway
takes effect within :data:`REFRESH_SECONDS` (config.toml ``catalog_refresh``) without a
restart, and a seal's suspension as soon as it is announced
(:mod:`sealgate.gateway.announcements`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sealgate.crypto.proof import ProofSealer
from sealgate.crypto.revocation import Revocations
from sealgate.crypto.verification import TrustList
from sealgate.gateway.home import DEFAULT_CATALOG_REFRESH
from sealgate.gateway.revoking import revoked_entries
from sealgate.verify.directory import Directory, IssuedCrl, KeyState, NotFound, Seal, SealKey
from sealgate.verify.matters import Matter

REFRESH_SECONDS = DEFAULT_CATALOG_REFRESH
#: How long GET /v1/crl may be cached: a new CRL reaches every cache within this (and the
#: refresh), while a city's relying parties need not ask at every check.
CRL_MAX_AGE = 60
#: A seal whose active certificate ends within this is named in logs and readiness.
EXPIRY_WARNING = dt.timedelta(days=30)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    seals: dict[str, Seal]
    roots: tuple[bytes, ...]
    trust: TrustList
    # GET /v1/trust: the newest root-signed trust document (None before the first)
    trust_document: bytes | None
    # Every seal certificate (DER) the directory knows → when its key retired (None: active)
    retirements: Mapping[bytes, dt.datetime | None]
    # Seals that cannot seal (certificate ended or not yet begun) or soon will not.
    expiry_warnings: tuple[str, ...]
    # seal id -> when its active key's certificate ends (Unix time), for the metrics
    certificate_ends: dict[str, float]
    # The newest CRL the root issued (GET /v1/crl), and the directory's own record of
    # the revoked seal certificates as of this load (the document check's source).
    crl: IssuedCrl | None = None
    revocations: Revocations | None = None  # None only in a snapshot made by hand
    # The only keys the signing process may sign with: the active seal keys (the audit
    # key is added by the gateway, which owns it).
    signing_labels: frozenset[str] = frozenset()
    # The city's table of matters (docs/design.md §17): matter id → what it may read.
    matters: Mapping[str, Matter] = field(default_factory=dict)
    # office (unit code) → the name its seals give it (the first in order, if several)
    unit_names: Mapping[str, str] = field(default_factory=dict)


class SealCatalog:
    def __init__(
        self,
        directory: Directory,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._sealers: dict[str, ProofSealer] = {}
        self._logged: set[str] = set()
        self.snapshot = self.load()

    def refresh(self) -> None:
        """Re-read seals and roots (blocking: run it off the event loop)."""
        self.snapshot = self.load()

    def load(self) -> CatalogSnapshot:
        """A fresh snapshot, not yet in use (blocking): the caller installs it as
        :attr:`snapshot` once the signing process may sign with its keys."""
        roots = tuple(der for der, _ in self._directory.roots())
        seals = {seal.seal_id: seal for seal in self._directory.seals()}
        crl = self._directory.latest_crl()
        published = self._directory.trust_document()
        matters = {matter.matter_id: matter for matter in self._directory.matters()}
        return CatalogSnapshot(
            seals=seals,
            roots=roots,
            trust=TrustList.from_der(roots),
            trust_document=None if published is None else published[1],
            retirements={
                key.certificate: seal.retired_at(key)
                for seal in seals.values()
                for key in seal.keys
            },
            expiry_warnings=self._expiry_warnings(seals.values()),
            certificate_ends=self._certificate_ends(seals.values()),
            crl=crl,
            revocations=Revocations.from_entries(
                roots, revoked_entries(seals.values()), self._clock()
            ),
            signing_labels=frozenset(
                key.key_label
                for seal in seals.values()
                for key in seal.keys
                if key.state is KeyState.ACTIVE
            ),
            matters=matters,
            unit_names=_unit_names(seals.values()),
        )

    def _certificate_ends(self, seals: Iterable[Seal]) -> dict[str, float]:
        ends = {}
        for seal in seals:
            try:
                key = seal.active_key
            except NotFound:
                continue
            ends[seal.seal_id] = self.sealer(key).validity[1].timestamp()
        return ends

    def _expiry_warnings(self, seals: Iterable[Seal]) -> tuple[str, ...]:
        now = self._clock()
        warnings = []
        for seal in seals:
            try:
                key = seal.active_key
            except NotFound:
                continue
            not_before, not_after = self.sealer(key).validity  # parsed once per key
            if now < not_before:
                warning = (
                    f"{seal.seal_id} cannot seal: its certificate begins {not_before:%Y-%m-%d}"
                )
            elif now > not_after:
                warning = f"{seal.seal_id} cannot seal: its certificate ended {not_after:%Y-%m-%d}"
            elif not_after - now < EXPIRY_WARNING:
                warning = f"{seal.seal_id}: its certificate ends {not_after:%Y-%m-%d}"
            else:
                continue
            warnings.append(warning)
            if warning not in self._logged:  # once per process, not every refresh
                self._logged.add(warning)
                logger.warning("%s (sealgate seal rotate %s)", warning, seal.seal_id)
        return tuple(warnings)

    def seal(self, seal_id: str) -> Seal | None:
        return self.snapshot.seals.get(seal_id)

    def matter(self, matter_id: str) -> Matter | None:
        return self.snapshot.matters.get(matter_id)

    def unit_name(self, unit_code: str) -> str | None:
        """The name the directory knows an office by (its seals'), or ``None``."""
        return self.snapshot.unit_names.get(unit_code)

    def sealer(self, key: SealKey) -> ProofSealer:
        sealer = self._sealers.get(key.key_label)
        if sealer is None:
            # Only the seal certificate: the root is the trust anchor, which checkers take
            # from the trust list; a copy in the proof would be bytes no signature covers.
            sealer = ProofSealer(key.certificate)
            self._sealers[key.key_label] = sealer
        return sealer


def _unit_names(seals: Iterable[Seal]) -> dict[str, str]:
    """Each office's name as its seals give it; the first in order if they differ."""
    names: dict[str, str] = {}
    for seal in sorted(seals, key=lambda s: s.unit_name):
        names.setdefault(seal.unit_code, seal.unit_name)
    return names

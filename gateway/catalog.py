"""The seals a gateway process can use, their sealers, and the trust document it serves.

Loaded from the :class:`~sealgate.verify.directory.Directory` at start and refreshed in the
background, so a ``sealgate seal rotate`` or ``seal create`` run beside a serving gateway
takes effect within :data:`REFRESH_SECONDS` without a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sealgate.crypto.proof import ProofSealer
from sealgate.crypto.verification import TrustList
from sealgate.verify.directory import Directory, NotFound, Seal, SealKey

REFRESH_SECONDS = 5.0
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
        self.snapshot = self._load()

    def refresh(self) -> None:
        """Re-read seals and roots (blocking: run it off the event loop)."""
        self.snapshot = self._load()

    def _load(self) -> CatalogSnapshot:
        roots = tuple(der for der, _ in self._directory.roots())
        seals = {seal.seal_id: seal for seal in self._directory.seals()}
        published = self._directory.trust_document()
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
        )

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

    def unit_name(self, unit_code: str) -> str | None:
        """The name the directory knows an office by (its seals'), or ``None``."""
        seals = self.snapshot.seals.values()
        names = sorted(s.unit_name for s in seals if s.unit_code == unit_code)
        return names[0] if names else None

    def sealer(self, key: SealKey) -> ProofSealer:
        sealer = self._sealers.get(key.key_label)
        if sealer is None:
            # Only the seal certificate: the root is the trust anchor, which checkers take
            # from the trust list; a copy in the proof would be bytes no signature covers.
            sealer = ProofSealer(key.certificate)
            self._sealers[key.key_label] = sealer
        return sealer

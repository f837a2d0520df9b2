"""A registry's damaged data, told apart from its outage.

An outage passes (a lock, a restart, a full disk freed): the gateway answers 503 with
``Retry-After`` meanwhile. Damaged data does not pass by waiting: the pages are wrong on
disk until the operator restores the database from a backup. Each backend translates its
engine's corruption errors through one :class:`CorruptionWatch`, which raises
:class:`~sealgate.verify.registry.RegistryCorrupted` instead of ``RegistryUnavailable``,
logs the engine's own message the first time, and remembers it for readiness. Writes are
refused from then on: a proof registered into a file that is about to be replaced by
its backup would be lost with a 201 already answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sealgate.verify.registry import RegistryCorrupted

log = logging.getLogger("sealgate.registry")

#: What the operator does, said wherever the corruption is reported.
REMEDY = "stop the gateways and restore the registry from a backup (docs/deployment.md)"


class CorruptionWatch:
    """The first corruption a store reported, kept for readiness and to refuse writes.

    ``examine`` runs once, in a thread of its own, after the first report: a fuller check
    of the store (SQLite's ``quick_check``) whose findings go to the log.
    """

    def __init__(self, store: str, *, examine: Callable[[], list[str]] | None = None) -> None:
        self._store = store
        self._examine = examine
        self._lock = threading.Lock()
        self.corruption: str | None = None  # the engine's message, once reported

    def noticed(self, what: str, message: str) -> RegistryCorrupted:
        """The error for a corruption the engine reported while doing ``what``."""
        with self._lock:
            first = self.corruption is None
            if first:
                self.corruption = message
        if first:
            # The engine's words, as they are: the operator searches for them.
            log.error("%s is corrupted: %s (while %s); %s", self._store, message, what, REMEDY)
            if self._examine is not None:
                threading.Thread(target=self._report, name="registry-check", daemon=True).start()
        return RegistryCorrupted(f"the registry is corrupted: {message}")

    def refuse_writes(self) -> None:
        """Raise :class:`RegistryCorrupted` once a corruption is known."""
        if (message := self.corruption) is not None:
            raise RegistryCorrupted(f"the registry is corrupted: {message}; writes refused")

    def _report(self) -> None:
        assert self._examine is not None
        try:
            findings = self._examine()
        except Exception as exc:  # the check itself failing must not end anything else
            log.error("%s: the integrity check failed too: %s", self._store, exc)
            return
        if findings:
            log.error("%s integrity check: %s", self._store, "; ".join(findings))
        else:
            log.error(
                "%s integrity check found nothing, yet the engine reported corruption: "
                "the damage may be in what the check skips (index entries); %s",
                self._store,
                REMEDY,
            )

"""Checking: a code's current status, and a presented document's seal and status.

The order of docs/design.md §3.2 holds: the code's syntax and keyed tag are checked with no I/O,
and only a code that passes reaches the lookup (cache, then registry).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import Found
from sealgate.crypto.assessment import RevocationCheck, TimestampCheck
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.document_check import check_document
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.language import STATUS_LABELS_ZH
from sealgate.gateway.problems import unknown_code
from sealgate.gateway.sealing import format_code
from sealgate.verify.code import CodeAuthority, CodeError, MalformedCode
from sealgate.verify.registry import ProofRecord, ProofStatus, Registry

MAX_REMEMBERED_CODES = 200_000


class StatusLookup(Protocol):
    """Where a checked code's status comes from (the caches in front of the registry)."""

    @property
    def local(self) -> LocalTier: ...

    async def get_status(self, code: str) -> ProofStatus | None: ...

    async def find(self, code: str) -> Found: ...


class StatusChecker:
    def __init__(
        self,
        *,
        codes: CodeAuthority,
        lookup: StatusLookup,
        registry: Registry,
        catalog: SealCatalog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._codes = codes
        self._lookup = lookup
        self._registry = registry
        self._catalog = catalog
        self._clock = clock
        self._genuine: dict[str, str] = {}  # code as typed → compact, for genuine codes
        #: How a presented proof's timestamp and seal revocation are checked; None: they
        #: are not, and the document check's answer says so.
        self.timestamp: TimestampCheck | None = None
        self.revocation: RevocationCheck | None = None

    def code(self, code_text: str) -> str:
        """The compact form of a genuine code; otherwise the one 404 for all, with no I/O."""
        compact = self._genuine.get(code_text)
        if compact is not None:
            return compact
        try:
            compact = self._codes.check(code_text).compact
        except MalformedCode:
            # The check character is public: such a code can never be a hit, and is
            # refused before any lookup, so it is a typing error to the limits
            raise unknown_code(mistyped=True) from None
        except CodeError:
            raise unknown_code() from None
        # Only genuine codes are remembered: a flood of guesses cannot grow this.
        if len(self._genuine) >= MAX_REMEMBERED_CODES:
            self._genuine.clear()
        self._genuine[code_text] = compact
        return compact

    def remembered(self, code_text: str) -> ProofStatus | None:
        """The in-process copy of an already checked code's status, with no work at all;
        ``None`` sends the caller the full way (:meth:`status`)."""
        compact = self._genuine.get(code_text)
        return None if compact is None else self._lookup.local.get(compact)

    async def status(self, code_text: str) -> ProofStatus:
        """The status of a genuine, registered code, from the caches if they have it."""
        return (await self.found(code_text))[0]

    async def found(self, code_text: str) -> tuple[ProofStatus, float | None]:
        """:meth:`status`, and the wall-clock time it is known current as of when it is
        a copy answered through a registry outage (None: current)."""
        status, as_of = await self._lookup.find(self.code(code_text))
        if status is None:
            raise unknown_code()
        return status, as_of

    async def record(self, code_text: str) -> ProofRecord:
        """The full record with the document, from the registry."""
        record = await self._registry.get(self.code(code_text))
        if record is None:
            raise unknown_code()
        return record

    def status_view(
        self, record: ProofStatus | ProofRecord, *, chinese: bool = False
    ) -> dict[str, Any]:
        """The minimum a checker needs (docs/design.md §6.2), holder masked, checked now."""
        return self.view(record, self._clock(), chinese=chinese)

    def view(
        self,
        record: ProofStatus | ProofRecord,
        now: float,
        as_of: float | None = None,
        *,
        chinese: bool = False,
    ) -> dict[str, Any]:
        """:func:`status_view` with what the directory knows: the seal's kind and the
        data owner's name."""
        owner = record.data_owner
        return status_view(
            record,
            now,
            as_of,
            chinese=chinese,
            seal_kind=self.seal_kind(record.seal_id),
            owner_name=None if owner is None else self._catalog.unit_name(owner),
        )

    def seal_kind(self, seal_id: str) -> str | None:
        """The kind of the seal a proof was sealed with (电子证明专用章: ``proof``,
        查询核验专用章: ``verification``), as the directory knows it."""
        seal = self._catalog.seal(seal_id)
        return None if seal is None else seal.kind.value

    async def check_document(self, der: bytes) -> dict[str, Any]:
        """Verify a presented sealed proof offline, judge its time, then report its
        registered status (:mod:`sealgate.gateway.document_check`).

        Raises :class:`sealgate.crypto.errors.ProofError` when the seal does not hold.
        """
        return await check_document(
            der,
            snapshot=self._catalog.snapshot,
            record_of=self._registry.get,
            status_of=self._lookup.get_status,
            now=self._clock(),
            timestamp=self.timestamp,
            revocation=self.revocation,
        )


def status_view(
    record: ProofStatus | ProofRecord,
    now: float,
    as_of: float | None = None,
    *,
    chinese: bool = False,
    seal_kind: str | None = None,
    owner_name: str | None = None,
) -> dict[str, Any]:
    """The minimum a checker needs (docs/design.md §6.2), holder masked, as of ``now``;
    ``as_of``: the status is a copy known current only as of then (an outage, §11);
    ``chinese``: with ``status_label``, the status in Chinese (``Accept-Language``);
    ``seal_kind``: the kind of the seal that sealed it, when the directory knows it;
    ``owner_name``: the data owner's name, when the directory knows it."""
    current = record.current_status(now)
    view: dict[str, Any] = {
        "code": format_code(record.code),
        "status": current.value,
        **({"status_label": STATUS_LABELS_ZH[current]} if chinese else {}),
        "type": record.type,
        "issuer": {"unit_name": record.unit_name, "unit_code": record.unit_code},
        **({"seal_kind": seal_kind} if seal_kind is not None else {}),
    }
    if record.data_owner is not None:
        # a platform seal's proof: the office whose data it states (and which changes it)
        view["data_owner"] = {
            "unit_code": record.data_owner,
            **({"unit_name": owner_name} if owner_name is not None else {}),
        }
    if record.endorsed:
        # who extracted, who verified, when (宁波 第十四条), as the sealed proof says
        view["endorsement"] = {
            "extracting_unit": record.extracting_unit,
            "verifying_unit": record.verifying_unit,
            "extracted_at": rfc3339(record.issued_at),
        }
    view |= {
        "holder": {
            "kind": record.holder_kind,
            "name": record.holder_name_masked,
            "id": record.holder_id_masked,
        },
        "valid_from": record.valid_from,
        "valid_until": record.valid_until,
        "issued_at": rfc3339(record.issued_at),
        "status_changed_at": rfc3339(record.status_changed_at),
        "checked_at": rfc3339(now),
    }
    if record.superseded_by:
        view["superseded_by"] = format_code(record.superseded_by)
    if as_of is not None:
        view["status_as_of"] = rfc3339(as_of)
    return view

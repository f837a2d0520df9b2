"""The status lists a worker publishes (``GET /v1/status-lists/{id}``), kept incrementally.

Each list holds :data:`LIST_CAPACITY` proofs' statuses (2 bits each, allocated whole so an
index just given reads ``valid`` until the next refresh sets it). At start the worker
reads every index with its proof's stored status; then every ``bound / 2`` seconds it
takes the indexes given since and the registry's change log since (the same log the
caches follow, §4.5), sets the entries they touch, and signs again, in the HSM, only the
lists that changed (and any whose token is half way to its expiry). Answers carry
``Cache-Control: public, max-age = bound / 2``, so a change reaches a verifier that
fetches through a CDN within the city's bound: half of it here, half in caches.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sealgate.crypto.key_trust import Use
from sealgate.crypto.status_list import ListStatus, StatusBits, compress, prepare_status_list
from sealgate.errors import Error
from sealgate.gateway.attestation import GatewayKeys, sign_cose
from sealgate.hsm.service import SigningService
from sealgate.verify.registry import Registry, Status

log = logging.getLogger(__name__)

LIST_CAPACITY = 1 << 20  # proofs a list: 256 KiB of entries, ~300 bytes compressed empty
TOKEN_LIFETIME = 24 * 3600  # an offline verifier may rely on a list this long (exp)
PAGE = 10_000

# The registry's statuses folded into the list's 2 bits.
LIST_VALUES = {
    Status.VALID: ListStatus.VALID,
    Status.PLEDGED: ListStatus.PLEDGED,
    Status.CHANGED: ListStatus.CHANGED,
    Status.REVOKED: ListStatus.REVOKED_OR_ENDED,
    Status.CANCELLED: ListStatus.REVOKED_OR_ENDED,
    Status.ABOLISHED: ListStatus.REVOKED_OR_ENDED,
}


def list_position(index: int) -> tuple[int, int]:
    """The list and the entry within it of a registry index."""
    return divmod(index, LIST_CAPACITY)


def status_list_path(list_id: int) -> str:
    return f"/v1/status-lists/{list_id}"


@dataclass(frozen=True, slots=True)
class PublishedList:
    token: bytes
    etag: str
    issued_at: int
    last_modified: str  # HTTP-date


class StatusLists:
    """One worker's status lists; :meth:`run` keeps them current."""

    def __init__(
        self,
        *,
        registry: Registry,
        signing: SigningService,
        keys: GatewayKeys,
        bound: float,
        public_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._signing = signing
        self._keys = keys
        self._public_url = public_url
        self.interval = bound / 2
        self._clock = clock
        self._lists: dict[int, StatusBits] = {}
        self._published: dict[int, PublishedList] = {}
        self._dirty: set[int] = set()
        self._last_index = 0
        self._last_seq = 0
        self._loaded = False

    @property
    def max_age(self) -> int:
        return max(1, int(self.interval))

    def uri(self, list_id: int) -> str:
        return self._public_url + status_list_path(list_id)

    def bits(self, list_id: int) -> StatusBits:
        found = self._lists.get(list_id)
        if found is None:
            found = self._lists[list_id] = StatusBits(bytes(LIST_CAPACITY // 4))
            self._dirty.add(list_id)
        return found

    def _set(self, index: int, status: Status) -> None:
        list_id, entry = list_position(index)
        if self.bits(list_id).set(entry, LIST_VALUES.get(status, ListStatus.VALID)):
            self._dirty.add(list_id)

    async def refresh(self) -> None:
        """Take what changed since the last refresh into the lists; sign those changed."""
        if not self._loaded:
            # The log's position first: a change made during the read is applied again.
            self._last_seq = await self._registry.last_change()
            self.bits(0)
        while slots := await self._registry.slots_since(self._last_index, PAGE):
            for index, status in slots:
                self._set(index, status)
            self._last_index = slots[-1][0]
        self._loaded = True
        while changes := await self._registry.changes_since(self._last_seq):
            indexes = await self._registry.slots_of(sorted({c.code for c in changes}))
            for change in changes:  # in log order: the last word on a code stands
                found = indexes.get(change.code)
                if found is not None:
                    self._set(found, change.to_status)
            self._last_seq = changes[-1].seq
        if self._last_index == 0:
            return  # no proof has been shown as a QR code: nothing to publish, nor sign
        now = int(self._clock())
        for list_id in self._lists:
            published = self._published.get(list_id)
            if (
                list_id in self._dirty
                or published is None
                or (now - published.issued_at > TOKEN_LIFETIME / 2)
            ):
                await self._sign(list_id, now)
        self._dirty.clear()

    async def _sign(self, list_id: int, now: int) -> None:
        # Compressed off the event loop (zlib lets go of the GIL): tens of milliseconds.
        label, kid = self._keys.signer(Use.STATUS_LIST)
        compressed = await asyncio.to_thread(compress, self._lists[list_id].snapshot())
        pending = prepare_status_list(
            kid,
            self.uri(list_id),
            compressed,
            issued_at=now,
            ttl=self.max_age,
            expires_at=now + TOKEN_LIFETIME,
        )
        token = await sign_cose(self._signing, label, pending)
        self._published[list_id] = PublishedList(
            token=token,
            etag='"' + hashlib.sha256(token).hexdigest()[:32] + '"',
            issued_at=now,
            last_modified=email.utils.formatdate(now, usegmt=True),
        )

    def published(self, list_id: int) -> PublishedList | None:
        return self._published.get(list_id)

    def knows(self, index: int) -> bool:
        """Whether a refresh has taken in this index (its status is the registry's)."""
        return index <= self._last_index

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Error as exc:  # the registry or the HSM away: the last lists stand
                log.warning("status lists not refreshed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)

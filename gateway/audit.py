"""The audit client in a worker: records go through its journal, and it supervises the
writer process that chains them into the store.

Every sealing, status change, verification and document download is recorded (client,
role, purpose, code, result, time, request id; never a holder's identity number) before
its answer leaves: if the record cannot be written the answer is a 503 instead (fail
closed). A worker writes its records to a journal of its own
(:mod:`sealgate.gateway.audit_journal`), the records of one turn of its event loop with one
write; a process of its own (:mod:`sealgate.gateway.audit_writer`) chains them into the
store (:mod:`sealgate.gateway.audit_store`), off the gateway's event loop and its GIL.
Requests are refused while the journal cannot be written, while the store cannot, once
the store is :data:`LAG_LIMIT` behind the journal with no progress, or
:data:`BACKLOG_LIMIT` behind however it progresses.

A change (sealing, status change) is audited **before its effect**: the handler writes
its intent (:meth:`AuditLog.record_rows` with ``ahead``) just before the registry write,
with the codes it concerns, on the disk (``fdatasync``) before the change is made; if
that fails the change is not made and the answer is a true 503. Its outcome record
follows as for any request. A journal write that fails marks the trail failing at once:
audited requests are refused up front, and ``/readyz`` is not ready, until a probe
writes to the journal and the store again with room to spare.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from sealgate.errors import Error
from sealgate.gateway.audit_journal import Journal, journal_directory, require_room
from sealgate.gateway.audit_store import write_head
from sealgate.hsm import frames
from sealgate.hsm.child import Child, ChildFailed, describe_exit, start_child
from sealgate.hsm.errors import HsmError
from sealgate.hsm.service import SigningService
from sealgate.verify.audit import (
    AuditEvent,
    SignedHead,
    checkpoint_digest,
    checkpoint_event,
    head_digest,
)

log = logging.getLogger("sealgate.audit")

AUDIT_KEY_LABEL = "sealgate-audit-1"
CHECKPOINT_SECONDS = 10.0
WRITE_TIMEOUT = 5.0
PROBE_SECONDS = 1.0
# A writer beats every 0.2 s (sealgate.gateway.audit_writer.HEARTBEAT_SECONDS) from a
# thread that nothing it does blocks; one silent this long (five beats missed, counted
# only while this worker listens: see _watch) is stopped or frozen, and is killed and
# replaced at once. A loaded machine delays a beat by tens of milliseconds, not 800.
HEARTBEAT_LIMIT = 1.0
WATCH_TICK = 0.1
# A writer that died is replaced at once, but not more often than this.
RESPAWN_GAP = 0.5
START_TIMEOUT = 15.0
MAX_GROUP = 5000
# How long journaled records may wait for the store before requests are refused. The
# writer is a few milliseconds behind; this bounds how many answers leave while the
# store cannot be written (a lock held, a hung writer) before the refusals begin: once
# the oldest has waited LAG_LIMIT with no progress at all for as long. A writer that
# progresses but more slowly than records come (a saturated host: the CPU shared with
# the workers) is given BACKLOG_LIMIT before requests are refused to let it catch up;
# its records are in the journal meanwhile, answered and durable, nothing lost.
LAG_LIMIT = 1.0
BACKLOG_LIMIT = 15.0
REFUSAL_LOG_SECONDS = 10.0
#: The ``result`` of a change's record written ahead of its effect; its outcome's
#: record (the HTTP status) follows under the same request id.
INTENT = "intent"


def unsigned_limit(checkpoint_seconds: float = CHECKPOINT_SECONDS) -> float:
    """How long a record may go without a signed checkpoint covering it before the trail
    is said to have an unsigned tail: two checkpoint intervals, plus one round of the
    duties loop (:data:`PROBE_SECONDS`), which is when a due checkpoint is made. A
    record written just after a checkpoint waits one interval and a round in the
    ordinary course; two intervals mean at least one checkpoint has failed."""
    return 2 * checkpoint_seconds + PROBE_SECONDS


class AuditUnavailable(Error):
    """The audit record could not be written: the request must be refused."""


class AuditNote:
    """What a handler adds to its request's audit record (see ``sealgate.gateway.middleware``)."""

    __slots__ = ("ahead", "client_request", "codes", "detail", "purpose")

    def __init__(self) -> None:
        # the keyed hash of the X-Request-Id a client sent, if any (never the id itself)
        self.client_request: str | None = None
        self.codes: list[str] | None = None  # the codes a sealing produced
        self.detail: dict[str, Any] = {}
        self.purpose: str | None = None  # as checked; else read from the query
        # whether the intent of a change is journaled: from then on it may be made
        self.ahead = False


AUDIT_NOTE = web.RequestKey("audit_note", AuditNote)


class _GroupFuture(asyncio.Future[Any]):
    """The one future a group of requests waits on for its records' journal write.

    A waiter that is cancelled must not cancel the write for its neighbours: ``cancel``
    refuses, so a cancelled waiter's task ends when its group is settled (asyncio defers
    the cancellation to then). Cheaper per request than wrapping the wait in ``shield``.
    """

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class _Group:
    """The records gathering for one journal write, and the one future they wait on."""

    __slots__ = ("future", "rows", "sync")

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.future: asyncio.Future[Any] = _GroupFuture()
        self.sync = False  # an intent is among them: on the disk before they are answered


class AuditLog:
    """Records events for the gateway: through its journal, into the store by the audit
    writer process; one per worker.

    The records of the requests handled in one turn of the event loop go to the journal
    as one frame with one write at the end of that turn, and their requests are answered
    then (see :mod:`sealgate.gateway.audit_journal`). The writer chains them into the store a few
    milliseconds later and says how far it got. Requests are refused (fail closed) while a
    record cannot be written to the journal, while the writer's last pass failed, or
    once journaled records have waited :data:`LAG_LIMIT` for a store that takes nothing
    (:data:`BACKLOG_LIMIT` for one that is only slow).
    """

    def __init__(
        self,
        path: Path,
        *,
        head_path: Path,
        signing: SigningService | None,
        key_label: str = AUDIT_KEY_LABEL,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        sink: Callable[[SignedHead], Awaitable[None]] | None = None,
    ) -> None:
        self._path = path
        # where each signed head is also pushed, out of the home owner's reach
        # (sealgate.gateway.audit_sink); it logs its own failures and never raises
        self._sink = sink
        self._head_path = head_path
        self._signing = signing
        self._key_label = key_label
        self._checkpoint_seconds = checkpoint_seconds
        self._journal: Journal | None = None
        # the group gathering until the loop's turn ends
        self._gathering: _Group | None = None
        # journal positions not yet chained, with when they were written: (n, offset, at)
        self._unchained: collections.deque[tuple[int, int, float]] = collections.deque()
        # calls sent awaiting their answer, in order: (id, operation, future, sent at)
        self._in_flight: collections.deque[tuple[int, str, asyncio.Future[Any], float]] = (
            collections.deque()
        )
        self._writer: Child | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._ids = 0
        self._heard_at = 0.0  # when the writer last said anything but a heartbeat
        self._silent = 0.0  # seconds listened to without a word, heartbeats included
        self._spawned_at = -RESPAWN_GAP
        self._spawn_lock = asyncio.Lock()
        self._checkpoint_lock = asyncio.Lock()
        self._writer_gone = asyncio.Event()  # wakes the duties loop to start another
        self._failing_since: float | None = None
        # why the last journal write failed, until a probe writes there again
        self._journal_failing: str | None = None
        self._since_checkpoint = 0
        # when the oldest record no checkpoint covers yet was journaled (monotonic)
        self._unsigned_since: float | None = None
        self._closed = False
        self._progress_at = 0.0  # when the writer last chained something waiting
        self._refusal_logged: str | None = None
        self._refusal_logged_at = 0.0
        self.groups_written = 0  # for metrics: records per group show how well writes share
        self.records_written = 0

    @property
    def healthy(self) -> bool:
        return self.refusal is None

    @property
    def refusal(self) -> str | None:
        """Why audited requests are refused now, or ``None``."""
        if self._journal is None:
            return "the audit journal cannot be opened"
        if self._journal_failing is not None:
            return f"the audit journal cannot be written ({self._journal_failing})"
        if self._failing_since is not None:
            return "the audit store cannot be written"
        unchained = self._unchained
        if unchained:
            now = time.monotonic()
            waited = now - unchained[0][2]
            if waited > LAG_LIMIT and now - self._progress_at > LAG_LIMIT:
                return "the audit writer is behind"
            if waited > BACKLOG_LIMIT:
                return f"the audit writer is {waited:.0f} s behind"
        return None

    def note_refusal(self, reason: str) -> None:
        """Log why requests are refused: at the first refusal and then at most every
        :data:`REFUSAL_LOG_SECONDS` (a refusal can last while thousands are refused)."""
        now = time.monotonic()
        if reason != self._refusal_logged or now - self._refusal_logged_at >= REFUSAL_LOG_SECONDS:
            log.warning("refusing audited requests: %s", reason)
            self._refusal_logged, self._refusal_logged_at = reason, now

    @property
    def unsigned_tail(self) -> str | None:
        """Why the trail's newest records lack a signed checkpoint for too long (the audit
        key cannot sign: a lost or reinitialised token), or ``None``.

        Past :func:`unsigned_limit` the gateway is not ready: what it records from then on
        could be altered without trace until a checkpoint signs it. Requests are still
        answered (they are recorded); a trail without a signing key is refused nowhere
        (``signing`` is ``None`` in tests of the log alone).
        """
        since = self._unsigned_since
        if since is None or self._signing is None:
            return None
        waited = time.monotonic() - since
        if waited <= unsigned_limit(self._checkpoint_seconds):
            return None
        return (
            f"{self._since_checkpoint} records unsigned for {waited:.0f} s: "
            "no checkpoint could be signed (is the audit key's token there?)"
        )

    def readiness(self) -> str | None:
        """Why this worker cannot serve audited requests, or ``None``: a refusal now, or
        a journal without the room a probe asks for (a disk about to fill refuses the
        next group; a balancer should send elsewhere before that)."""
        if (refusal := self.refusal) is not None:
            return refusal
        journal = self._journal
        if journal is not None:
            try:
                require_room(journal.directory)
            except OSError as exc:
                return f"the audit journal's disk is full ({exc.strerror})"
        return None

    async def start(self) -> None:
        """Open the journal and start the writer, trying again for up to
        :data:`START_TIMEOUT`: a worker that accepts connections while refusing every
        audited request takes its share of them (SO_REUSEPORT) only to answer 503. Past
        the bound it starts refusing, says so in /readyz, and the duties loop goes on
        trying."""
        # What a gateway before this one left unsigned (one killed before its next
        # checkpoint, whose journal this worker's writer chains) is signed by this one's
        # first checkpoint, due like any other: a trail must not keep records no
        # checkpoint covers (sealgate audit verify finds it BROKEN).
        self._since_checkpoint = max(self._since_checkpoint, 1)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._open_journal():
                try:
                    await self._write_through()
                    self._recovered()
                    return
                except AuditUnavailable as exc:
                    self._failed(exc)
            if self._closed or time.monotonic() >= deadline:
                log.error("audit trail not writable at start: %s", self.refusal)
                return
            await asyncio.sleep(PROBE_SECONDS / 4)

    async def _spawn(self) -> None:
        self._spawned_at = time.monotonic()
        journal = self._journal
        if journal is None:
            raise AuditUnavailable("the audit journal cannot be opened")
        try:
            writer, reply = await start_child(
                "sealgate.gateway.audit_writer",
                (str(self._path), str(WRITE_TIMEOUT), str(journal.directory / journal.name)),
                name="audit writer",
                timeout=START_TIMEOUT,
            )
        except ChildFailed as exc:
            raise AuditUnavailable(str(exc)) from exc
        if reply != ["ready"]:
            await writer.stop()
            raise AuditUnavailable("the audit writer cannot open the store")
        if self._closed:  # closed while this writer was starting: it must not linger
            await writer.stop()
            raise AuditUnavailable("the audit log is closed")
        self._writer = writer
        self._heard_at = time.monotonic()
        self._silent = 0.0
        self._reader = asyncio.create_task(self._read_replies(writer), name="audit-replies")
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(), name="audit-watchdog")

    async def record(self, events: list[AuditEvent]) -> None:
        """Journaled on return; raises :class:`AuditUnavailable` otherwise."""
        await self.record_rows([_fields(e) for e in events])

    async def record_rows(self, rows: list[list[Any]], *, ahead: bool = False) -> None:
        """:meth:`record` for events given as their fields in :class:`AuditEvent` order.

        Rows join the gathering group and wait on its one future: per request, auditing
        costs an append and a wait. The group is written at the end of the loop's turn:
        under load many requests share one write, and their answers leave together.
        ``ahead``: the rows are a change's intent, written before the change is made;
        their group is on the disk (``fdatasync``) when this returns.
        """
        if (refusal := self.refusal) is not None:
            self.note_refusal(refusal)
            raise AuditUnavailable(refusal)
        group = self._gathering
        if group is None or len(group.rows) >= MAX_GROUP:
            if group is not None:
                # a full group goes at once; the write already scheduled for this turn
                # takes the group that follows it
                self._write_gathered()
            else:
                asyncio.get_running_loop().call_soon(self._write_gathered)
            group = self._gathering = _Group()
        group.rows.extend(rows)
        group.sync = group.sync or ahead
        await group.future

    def _write_gathered(self) -> None:
        group, self._gathering = self._gathering, None
        if group is None:
            return
        rows, future = group.rows, group.future
        journal = self._journal
        handle = -1
        try:
            if journal is None:
                raise OSError("the audit journal is closed")
            if group.sync:
                # taken before the append: an append that fills the file rotates the
                # journal, and the frame to make durable is in the file it was written to
                handle = journal.sync_handle()
            journal.append(frames.pack(rows))
        except OSError as exc:
            if handle >= 0:
                os.close(handle)
            # At once, not after the writer notices: the next changes are refused
            # before anything is done, and /readyz says so, until a probe writes here.
            self._journal_failed(exc)
            _settle([future], error=AuditUnavailable("the audit record was not written"))
            return
        now = time.monotonic()
        # one position in 50 ms is enough to tell a lag: the deque stays short
        if not self._unchained or now - self._unchained[-1][2] > 0.05:
            self._unchained.append((journal.n, journal.offset, now))
        else:
            self._unchained[-1] = (journal.n, journal.offset, self._unchained[-1][2])
        self._since_checkpoint += len(rows)
        if self._unsigned_since is None:
            self._unsigned_since = now
        self.groups_written += 1
        self.records_written += len(rows)
        if handle < 0:
            _settle([future])
            return
        # An intent is among the rows: they are answered once on the disk. The flush runs
        # in a thread (0.16 ms on this machine's disk, milliseconds on one without a write
        # cache), so the loop goes on serving verifications meanwhile; the write itself
        # stayed here, which keeps the journal in order.
        synced = asyncio.get_running_loop().run_in_executor(None, _flush, handle)
        synced.add_done_callback(lambda done: self._synced(done, future))

    def _synced(self, done: asyncio.Future[None], future: asyncio.Future[Any]) -> None:
        error = None if done.cancelled() else done.exception()
        if error is None and not done.cancelled():
            _settle([future])
            return
        # Written but maybe not durable: the changes are not made (their intents may
        # stay in the trail, as attempts), and the trail refuses until a probe writes.
        if isinstance(error, OSError):
            self._journal_failed(error)
        _settle([future], error=AuditUnavailable("the audit record was not written"))

    def _chained(self, n: int, offset: int) -> None:
        """The writer's word that the journal is in the store up to ``(n, offset)``."""
        unchained = self._unchained
        while unchained and (unchained[0][0], unchained[0][1]) <= (n, offset):
            unchained.popleft()
            self._progress_at = time.monotonic()
        self._recovered()

    def _send(self, operation: str, future: asyncio.Future[Any]) -> None:
        writer = self._writer
        if writer is None or not writer.writable:
            # a dying writer: the reply reader sees its end and fails what is in flight
            _settle([future], error=AuditUnavailable("the audit writer is not running"))
            return
        self._ids += 1
        writer.send([self._ids, operation])
        self._in_flight.append((self._ids, operation, future, time.monotonic()))

    async def _call(self, operation: str) -> Any:
        if self._writer is None:
            raise AuditUnavailable("the audit writer is not running")
        self._write_gathered()  # what gathered before is in the journal the call sees
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._send(operation, future)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result
            # and drops a cancellation that arrives as the reply does, so a task
            # cancelled at shutdown (the duties loop) went on forever.
            async with asyncio.timeout(WRITE_TIMEOUT + 5):
                return await future
        except TimeoutError:
            raise AuditUnavailable(f"the audit writer did not answer {operation!r}") from None

    async def flush(self) -> None:
        """Return once every record journaled so far is in the store."""
        await self._call("drain")

    async def _watch(self) -> None:
        """Kill a writer that stopped (no heartbeat for :data:`HEARTBEAT_LIMIT`) or that
        runs but stopped answering or chaining; its reply reader then fails what was in
        flight, and the duties loop starts another. A task of its own: nothing that
        waits on the writer can delay it.

        Silence is counted in ticks, and a tick that comes late (this event loop was
        busy) counts for at most two: the beats sent meanwhile are still unread in the
        pipe, and must not be taken for silence."""
        last = time.monotonic()
        while not self._closed:
            await asyncio.sleep(WATCH_TICK)
            now = time.monotonic()
            elapsed, last = min(now - last, 2 * WATCH_TICK), now
            writer = self._writer
            if writer is None or writer.returncode is not None:
                continue
            self._silent += elapsed
            if self._silent >= HEARTBEAT_LIMIT:
                writer.report_lost(f"no heartbeat for {self._silent:.1f} s; killing it")
                writer.kill()
                continue
            # A writer at work says something at least every WRITE_TIMEOUT: how far it
            # got, or that a pass failed (a locked store fails a pass after that long).
            now = time.monotonic()
            # Silence counts from the oldest record waiting, not from the writer's last
            # word: an idle writer says nothing, and must not be taken for a hung one.
            unchained = self._unchained
            if (self._in_flight and now - self._in_flight[0][3] > WRITE_TIMEOUT + 5) or (
                unchained and now - max(self._heard_at, unchained[0][2]) > WRITE_TIMEOUT + 5
            ):
                writer.report_lost("stopped answering; killing it")
                writer.kill()

    async def _read_replies(self, writer: Child) -> None:
        """Take the writer's word as it comes: answers to calls, in order, and unasked
        notices (id 0) of how far the journal is chained or that a pass failed.

        Always reading, so a writer that dies is noticed at once even when idle; a writer
        that hangs is killed by :meth:`_watch`, which ends this too.
        """
        in_flight = self._in_flight
        try:
            while True:
                try:
                    reply = await writer.read()
                except asyncio.IncompleteReadError:
                    if self._closed and not in_flight:
                        return  # stopped on purpose
                    raise
                self._silent = 0.0
                if not isinstance(reply, list) or len(reply) != 3:
                    raise AuditUnavailable("the audit writer answered out of turn")
                if reply[0] == 0 and reply[1] == "alive":
                    continue  # a heartbeat: it runs, which says nothing of its work
                self._heard_at = time.monotonic()
                if reply[0] == 0:
                    if reply[1] == "chained":
                        self._chained(int(reply[2][0]), int(reply[2][1]))
                    else:
                        self._failed(AuditUnavailable(str(reply[2])))
                    continue
                if not in_flight or reply[0] != in_flight[0][0]:
                    raise AuditUnavailable("the audit writer answered out of turn")
                _, _, future, _ = in_flight.popleft()
                if reply[1] != "ok":
                    self._failed(AuditUnavailable(str(reply[2])))
                    _settle([future], error=AuditUnavailable("the audit store cannot be written"))
                    continue
                self._recovered()
                _settle([future], value=reply[2])
        except Exception as exc:
            # The writer died or misbehaved (or this reader has a bug): the calls in
            # flight are refused; the journal keeps the records, and the next writer
            # (the duties loop starts one) chains them.
            if not isinstance(
                exc,
                (
                    OSError,
                    asyncio.IncompleteReadError,
                    ValueError,
                    frames.ProtocolError,
                    AuditUnavailable,
                ),
            ):
                log.error("audit reply reader failed", exc_info=exc)
            if self._writer is writer:
                self._writer = None
                self._writer_gone.set()
            failed = [future for _, _, future, _ in in_flight]
            in_flight.clear()
            _settle(failed, error=AuditUnavailable("the audit writer failed"))
            if isinstance(exc, asyncio.IncompleteReadError):
                await writer.stop()  # it is ending: reaped at once
                writer.report_lost(describe_exit(writer.returncode))
            else:
                writer.report_lost(f"{type(exc).__name__} on the pipe")
                await writer.stop()

    def _journal_failed(self, exc: OSError) -> None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if self._journal_failing is None:
            log.error(
                "audit records cannot be journaled (%s: %s): refusing audited requests",
                type(exc).__name__,
                reason,
            )
        self._journal_failing = reason

    def _probe_journal(self) -> bool:
        """Write an empty frame to the journal, with room to spare after it; success
        ends a journal failure. Whether the journal is writable."""
        journal = self._journal
        if journal is None:
            return False
        try:
            require_room(journal.directory)
            journal.append(frames.pack([]))  # the writer chains it as no records
        except OSError as exc:
            self._journal_failed(exc)
            return False
        if self._journal_failing is not None:
            log.info("audit journal writable again")
            self._journal_failing = None
        return True

    def _failed(self, error: BaseException) -> None:
        if self._failing_since is None:
            log.error(
                "audit trail cannot be written (%s): refusing audited requests",
                type(error).__name__,
            )
            self._failing_since = time.monotonic()

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("audit trail writable again")
            self._failing_since = None

    async def probe(self) -> None:
        """Write to the journal, start a writer if none runs, and have it write to the
        store; success mends a failure."""
        if not self._open_journal() or not self._probe_journal():
            return
        with contextlib.suppress(AuditUnavailable):
            await self._write_through()

    async def _write_through(self) -> None:
        """A writer running (started if none runs) and a write to the store through it;
        raises :class:`AuditUnavailable`."""
        async with self._spawn_lock:  # the duties loop and a caller at once: one writer
            if self._writer is None:
                await self._spawn()
        await self._call("probe")

    def _open_journal(self) -> bool:
        """Open this worker's journal unless it is open; whether it is."""
        if self._journal is None:
            try:
                self._journal = Journal(journal_directory(self._path))
            except OSError as exc:
                log.error("the audit journal cannot be opened (%s)", type(exc).__name__)
                return False
        return True

    async def checkpoint(self) -> SignedHead | None:
        """Sign the chain's head with the audit key and record the checkpoint; returns
        once the checkpoint's record is in the store."""
        async with self._checkpoint_lock:  # the duties' and a provisioning change's
            return await self._checkpoint()

    async def _checkpoint(self) -> SignedHead | None:
        if self._signing is None or self._writer is None:
            return None
        head_row = await self._call("head")
        if head_row is None:
            return None
        seq, head_hash = int(head_row[0]), bytes(head_row[1])
        label = self._key_label
        signature, head_signature = await self._signing.sign_digests(
            [(label, checkpoint_digest(seq, head_hash)), (label, head_digest(seq, head_hash))]
        )
        head = SignedHead(seq, head_hash, head_signature, label)
        await self.record([checkpoint_event(seq, head_hash, signature, label, time.time())])
        self._since_checkpoint = 0
        self._unsigned_since = None
        await self.flush()
        await asyncio.to_thread(write_head, self._head_path, head)
        if self._sink is not None:
            await self._sink(head)
        return head

    async def run(self) -> None:
        """Background duties: a writer while none runs, probes while failing, and
        checkpoints every interval. Nothing ends them but cancellation: they are what
        starts a writer again, so a failed round (out of file descriptors, a full disk)
        is logged and the next one tries again."""
        last_checkpoint = time.monotonic()
        while True:
            # every PROBE_SECONDS, or at once when the writer is gone (died or killed as
            # hung): records wait in the journal meanwhile, and requests are refused once
            # they have waited LAG_LIMIT
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_SECONDS):
                    await self._writer_gone.wait()
            if self._writer_gone.is_set():
                self._writer_gone.clear()
                await asyncio.sleep(max(0.0, self._spawned_at + RESPAWN_GAP - time.monotonic()))
            try:
                last_checkpoint = await self._duties(last_checkpoint)
            except (HsmError, AuditUnavailable, OSError) as exc:
                log.warning("audit duties failed (%s: %s); retrying", type(exc).__name__, exc)
            except Exception:
                log.exception("audit duties failed unexpectedly; retrying")

    async def _duties(self, last_checkpoint: float) -> float:
        """One round of :meth:`run`; returns when the last checkpoint was made."""
        if (
            self._writer is None
            or self._journal is None
            or self._journal_failing is not None
            or self._failing_since is not None
        ):
            await self.probe()
            return last_checkpoint
        if self._since_checkpoint == 0:
            return last_checkpoint
        if time.monotonic() - last_checkpoint < self._checkpoint_seconds:
            return last_checkpoint
        try:
            await self.checkpoint()
        except (HsmError, AuditUnavailable) as exc:
            log.warning("audit checkpoint skipped (%s); retrying later", type(exc).__name__)
        return time.monotonic()

    async def close(self) -> None:
        if self._since_checkpoint and self.healthy:
            try:
                await self.checkpoint()
            except (HsmError, AuditUnavailable) as exc:
                log.warning("final audit checkpoint skipped (%s)", type(exc).__name__)
        self._write_gathered()
        if self._writer is not None:
            try:
                await self.flush()
            except AuditUnavailable:
                log.warning("audit journal left for the next writer to chain")
        self._closed = True
        if self._journal is not None:
            self._journal.close()  # unlocked: the writer finishes the file as it ends
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._reader
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)


def _fields(event: AuditEvent) -> list[Any]:
    return [
        event.action,
        event.client_id,
        event.role,
        event.purpose,
        event.code,
        event.result,
        event.request_id,
        event.at,
        event.detail,
    ]


def _flush(handle: int) -> None:
    """``fdatasync`` a journal descriptor from :meth:`Journal.sync_handle`, and close it."""
    try:
        os.fdatasync(handle)
    finally:
        os.close(handle)


def _settle(
    futures: list[asyncio.Future[Any]], *, value: Any = None, error: BaseException | None = None
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
            future.exception()  # retrieved: a group whose waiters all left is not an error


def event_detail(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}

"""Signing for the asyncio gateway, out of its process.

Two measurements on the target machine shape this module: python-pkcs11 with SoftHSM2
aborts ("double free") when two threads sign at once, even on separate sessions; and a
signing thread beside a busy event loop is starved by the GIL (~110 signs/s instead of
~12k/s). So the gateway process never touches PKCS#11. :class:`ProcessSigningService`
runs the keystore in a child interpreter (``python -m sealgate.hsm.worker``, never a ``fork()``
of the gateway) that owns one session, and feeds it batches: the round trip is paid
per batch, not per signature.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from sealgate.hsm import _wire, frames
from sealgate.hsm.child import Child, ChildFailed, describe_exit, start_child
from sealgate.hsm.errors import HsmError, HsmUnavailable, KeystoreConfigError
from sealgate.hsm.keystore import Keystore, KeystoreConfig

logger = logging.getLogger(__name__)

DIGEST_LEN = 32

#: How long a signing process may say nothing while work waits on it before it is taken
#: for hung, killed and replaced. It speaks at least every
#: :data:`sealgate.hsm.worker.PROGRESS_SECONDS` (0.1 s) while it signs, so this is ten
#: missed words: a child starved by a loaded machine (2 cores, every process busy) is
#: late by tens of milliseconds, a stopped (SIGSTOP) or wedged one for ever. Silence is
#: counted only while this process listens, in tenths of the limit (so a child is given up
#: on after 0.9 to 1.1 s of silence; see :meth:`ProcessSigningService._watch_stall`).
STALL_TIMEOUT = 1.0
#: How long closing waits for the batch in flight (a progressing child is never cut off).
CLOSE_WAIT = 30.0


class SigningService(ABC):
    """Asynchronous signing of SHA-256 digests by labelled keys.

    Use as ``async with service:`` (or call :meth:`start` and :meth:`close`).
    """

    @abstractmethod
    async def start(self) -> None:
        """Get ready to sign; raises :class:`KeystoreConfigError` on a bad configuration."""

    @abstractmethod
    async def sign_digest(self, label: str, digest: bytes) -> bytes:
        """DER ECDSA or PKCS#1 v1.5 signature over ``digest`` by the key ``label``."""

    async def sign_digests(self, items: list[tuple[str, bytes]]) -> list[bytes]:
        """:meth:`sign_digest` for each ``(label, digest)``, in order; one failure fails
        the call. Implementations may sign them in one round trip."""
        return list(await asyncio.gather(*(self.sign_digest(label, d) for label, d in items)))

    @abstractmethod
    async def check(self) -> None:
        """Readiness probe: raises :class:`HsmUnavailable` if signing cannot work now."""

    def allow(self, labels: Iterable[str]) -> None:  # noqa: B027 - optional: see below
        """Sign only with these labels from now on (the gateway's active seal keys and
        its audit key). The signing process enforces it; a service that signs in the
        caller's own process (the CLI's) has no one to guard against and ignores it."""

    @abstractmethod
    async def close(self) -> None:
        """Stop signing and release the keystore."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class InProcessSigningService(SigningService):
    """Signs synchronously, in this process and thread, with a keystore you opened.

    For the CLI and one-shot jobs only. NOT for the event-loop serving path: every call
    blocks the loop for the duration of a C_Sign.
    """

    def __init__(self, keystore: Keystore) -> None:
        self._keystore = keystore

    async def start(self) -> None:
        pass

    async def sign_digest(self, label: str, digest: bytes) -> bytes:
        return self._keystore.sign_digest(label, digest)

    async def check(self) -> None:
        try:
            self._keystore.check()
        except HsmUnavailable:
            raise
        except HsmError as exc:
            raise HsmUnavailable(f"keystore cannot sign: {exc}") from exc

    async def close(self) -> None:
        self._keystore.close()


@dataclass(eq=False, slots=True)
class _Call:
    item: tuple[str, bytes] | None  # None: a readiness probe
    future: asyncio.Future[bytes]


@dataclass(eq=False)
class _Child:
    """One signing process, the task that feeds it and the task that watches it die."""

    process: Child
    in_flight: list[_Call] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lost: bool = False  # no longer accepts work: died, broke the protocol, or closed
    allowed_version: int = 0  # the allow-list it was last sent (0: none yet)
    silent: float = 0.0  # seconds listened to without a word while work was in flight


class ProcessSigningService(SigningService):
    """Signs in a child process, batching concurrent calls.

    Calls that arrive while a batch is in flight queue up and go together as the next
    batch (at most ``max_batch``); the child signs them one after another on its single
    session and answers with one frame. If the child dies or the pipe breaks, every
    pending call fails with :class:`HsmUnavailable`; the next call starts a new child, but
    not sooner than ``restart_backoff`` seconds after the previous start: calls inside that
    window fail fast with ``HsmUnavailable.retry_after`` set.

    A child that says nothing for ``stall_timeout`` seconds while a batch waits on it is
    taken for hung (stopped, or wedged in its token), killed and replaced, and everything
    pending fails at once. A child at work says how far it got every 0.1 s, so the bound
    is the same for a batch of 1 and of 1,000: a limit that grew with the batch (3 s plus
    20 ms a signature) kept a batch of 1,000 waiting 23 s for its 503.
    """

    def __init__(
        self,
        config: KeystoreConfig,
        *,
        max_batch: int = 1024,
        restart_backoff: float = 0.5,
        start_timeout: float = 30.0,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self._config = config
        self._max_batch = max_batch
        self._restart_backoff = restart_backoff
        self._start_timeout = start_timeout
        self._stall_timeout = stall_timeout
        self._queue: collections.deque[_Call] = collections.deque()
        self._wakeup = asyncio.Event()
        self._spawn_lock = asyncio.Lock()
        self._child: _Child | None = None
        self._last_spawn = -math.inf
        self._last_spawn_error: HsmError | None = None
        self._batch_ids = itertools.count(1)
        self._closed = False
        # Children being shut down; held here so the tasks are not garbage-collected.
        self._stopping: set[asyncio.Task[None]] = set()
        # The labels the child may sign with, numbered so each child is sent the newest
        # before its next batch (None: never restricted, as in the hsm tests).
        self._allowed: frozenset[str] | None = None
        self._allowed_version = 0

    @property
    def pid(self) -> int | None:
        """The signing process's pid, if one is running."""
        child = self._child
        return None if child is None or child.lost else child.process.pid

    def allow(self, labels: Iterable[str]) -> None:
        allowed = frozenset(labels)
        if allowed != self._allowed:
            self._allowed = allowed
            self._allowed_version += 1

    async def start(self) -> None:
        if self._closed:
            raise HsmUnavailable("signing service is closed")
        async with self._spawn_lock:
            if self._child is None or self._child.lost:
                await self._spawn()

    async def sign_digest(self, label: str, digest: bytes) -> bytes:
        if len(digest) != DIGEST_LEN:
            raise ValueError(f"expected a {DIGEST_LEN}-byte SHA-256 digest, got {len(digest)}")
        return await self._submit((label, bytes(digest)))

    async def sign_digests(self, items: list[tuple[str, bytes]]) -> list[bytes]:
        """All in the queue at once: they go to the signing process together, with no
        task per signature."""
        for _, digest in items:
            if len(digest) != DIGEST_LEN:
                raise ValueError(f"expected a {DIGEST_LEN}-byte SHA-256 digest, got {len(digest)}")
        await self._running_child()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bytes]] = []
        for label, digest in items:
            future: asyncio.Future[bytes] = loop.create_future()
            self._queue.append(_Call((label, bytes(digest)), future))
            futures.append(future)
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            for future in futures:  # cancelled or failed: the rest need not be signed
                future.cancel()
            raise

    async def check(self) -> None:
        try:
            await self._submit(None)
        except HsmUnavailable:
            raise
        except HsmError as exc:
            raise HsmUnavailable(f"signing process cannot sign: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail_queued(lambda: HsmUnavailable("signing service is closed"))
        self._wakeup.set()  # an idle pump sees _closed and returns
        child, self._child = self._child, None
        if child is None or child.lost:
            return
        pump = child.tasks[0]
        # Let the batch in flight finish, then close stdin: the child's clean exit.
        # (a hung one is given up on by its stall watch meanwhile, which ends the pump)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT):
                await asyncio.shield(pump)
        self._lose(child, "signing service closed", warn=False)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    # -- internals ------------------------------------------------------------------

    async def _submit(self, item: tuple[str, bytes] | None) -> bytes:
        await self._running_child()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(item, future))
        self._wakeup.set()
        return await future

    async def _running_child(self) -> _Child:
        child = self._child
        if child is not None and not child.lost:
            return child
        async with self._spawn_lock:
            if self._closed:
                raise HsmUnavailable("signing service is closed")
            child = self._child
            if child is not None and not child.lost:
                return child
            wait = self._last_spawn + self._restart_backoff - asyncio.get_running_loop().time()
            if wait > 0:
                if isinstance(self._last_spawn_error, KeystoreConfigError):
                    # Retrying cannot fix a configuration; say so, not "retry later".
                    raise KeystoreConfigError(str(self._last_spawn_error))
                raise HsmUnavailable(
                    f"signing process restarting; retry in {wait:.2f}s", retry_after=wait
                )
            return await self._spawn()

    async def _spawn(self) -> _Child:
        self._last_spawn = asyncio.get_running_loop().time()
        self._last_spawn_error = None
        try:
            return await self._spawn_child()
        except HsmError as exc:
            self._last_spawn_error = exc
            raise

    async def _spawn_child(self) -> _Child:
        try:
            # The PIN travels on the pipe: never argv (ps) or the environment (/proc).
            process, reply = await start_child(
                "sealgate.hsm.worker",
                name="signing process",
                timeout=self._start_timeout,
                hello=_wire.config_to_wire(self._config),
            )
        except ChildFailed as exc:
            raise HsmUnavailable(str(exc)) from exc
        if reply != ["ready"]:
            await process.stop()
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == "error":
                error = _wire.error_from_code(str(reply[1]), str(reply[2]))
                raise error if isinstance(error, HsmError) else HsmError(str(error))
            raise HsmUnavailable("the signing process answered nonsense at start")
        if self._closed:  # closed while this child was starting: it must not linger
            await process.stop()
            raise HsmUnavailable("signing service is closed")
        child = _Child(process)
        child.tasks = [
            asyncio.create_task(self._pump(child), name=f"hsm-pump-{process.pid}"),
            asyncio.create_task(self._watch(child), name=f"hsm-watch-{process.pid}"),
            asyncio.create_task(self._watch_stall(child), name=f"hsm-stall-{process.pid}"),
        ]
        self._child = child
        return child

    def _take_batch(self) -> list[_Call]:
        batch: list[_Call] = []
        while self._queue and len(batch) < self._max_batch:
            call = self._queue.popleft()
            if not call.future.done():  # skip callers that were cancelled
                batch.append(call)
        return batch

    async def _pump(self, child: _Child) -> None:
        """Send one batch, wait for its answer, deliver, repeat."""
        process = child.process
        try:
            while True:
                batch = self._take_batch()
                if not batch:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                child.silent = 0.0
                child.in_flight = batch
                if self._allowed is not None and child.allowed_version != self._allowed_version:
                    # Before the batch, on the same pipe: the child reads it first.
                    process.send([_wire.ALLOW, sorted(self._allowed)])
                    child.allowed_version = self._allowed_version
                batch_id = next(self._batch_ids)
                process.send([batch_id, [call.item for call in batch]])
                # No timeout here: _watch_stall gives up on a silent child, whatever
                # the batch's size, and cancels this task.
                await process.drain()
                while True:
                    reply = await process.read()
                    child.silent = 0.0
                    if not (isinstance(reply, list) and len(reply) == 2 and reply[0] == 0):
                        break  # not word of progress ([0, done]): the answer
                if (
                    not isinstance(reply, list)
                    or len(reply) != 2
                    or reply[0] != batch_id
                    or not isinstance(reply[1], list)
                    or len(reply[1]) != len(batch)
                ):
                    raise frames.ProtocolError("reply does not match the batch")
                child.in_flight = []
                for call, result in zip(batch, reply[1], strict=True):
                    if call.future.done():
                        continue
                    if isinstance(result, bytes):
                        call.future.set_result(result)
                    else:
                        code, message = result
                        call.future.set_exception(_wire.error_from_code(code, message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure here leaves the pipe in an unknown state
            self._lose(child, f"{type(exc).__name__} on the pipe")

    async def _watch(self, child: _Child) -> None:
        returncode = await child.process.wait()
        # With a batch in flight the pump reads the child's last words first, then hits
        # end of file and declares the loss itself.
        if not child.in_flight:
            self._lose(child, describe_exit(returncode))

    async def _watch_stall(self, child: _Child) -> None:
        """Give up on a child that says nothing for ``stall_timeout`` while work waits.

        Silence is counted in ticks of a tenth of the limit, and a tick that comes late
        (this event loop was busy: preparing a batch of 1,000 proofs, say) counts for at
        most two: what the child said meanwhile is still unread in the pipe, and must not
        be taken for silence. A stopped child is found within the limit plus a tick or
        two; under a loop that lags throughout, within ten ticks, however long they are.
        """
        loop = asyncio.get_running_loop()
        tick = self._stall_timeout / 10
        last = loop.time()
        while not child.lost:
            await asyncio.sleep(tick)
            now = loop.time()
            elapsed, last = min(now - last, 2 * tick), now
            if not child.in_flight:
                child.silent = 0.0
                continue
            child.silent += elapsed
            if child.silent >= self._stall_timeout:
                outstanding = len(child.in_flight)
                self._lose(
                    child,
                    f"silent for {child.silent:.1f} s with {outstanding} signatures "
                    "outstanding; killed",
                    hung=True,
                )
                return

    def _lose(self, child: _Child, reason: str, *, warn: bool = True, hung: bool = False) -> None:
        """Retire a child: fail its pending calls, stop its tasks, end the process (at
        once if ``hung``: closing its stdin would only wait out the grace period)."""
        if child.lost:
            return
        child.lost = True
        if warn:
            child.process.report_lost(reason)
        for call in child.in_flight:
            if not call.future.done():
                call.future.set_exception(HsmUnavailable(f"signing process lost: {reason}"))
        child.in_flight = []
        self._fail_queued(lambda: HsmUnavailable(f"signing process lost: {reason}"))
        current = asyncio.current_task()
        for task in child.tasks:
            if task is not current:
                task.cancel()
        if child.process.returncode is None:
            if hung:
                child.process.kill()  # SIGKILL ends a stopped process too
            stopping = asyncio.get_running_loop().create_task(child.process.stop())
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)

    def _fail_queued(self, error: Any) -> None:
        while self._queue:
            call = self._queue.popleft()
            if not call.future.done():
                call.future.set_exception(error())

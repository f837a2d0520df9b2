"""The shared cache tier: proof statuses in Redis, plus the invalidation channel.

Redis is an accelerator, never a dependency: every availability failure degrades to a
miss (``get``) or a no-op (``put``/``delete``/``publish``) at this class's boundary, and
the gateway answers from the registry. A circuit breaker makes a dead Redis cost one
timeout per ``breaker_seconds`` per process instead of one per request.

Cancellation safety (the redis-py CVE-2023-28858/28859 class, where a command cancelled
between send and read left its reply on a pooled connection for the next caller):
redis-py 8.1 itself disconnects a connection when a ``BaseException`` (hence
``CancelledError``) interrupts ``send_packed_command`` or ``read_response``, and the pool
refuses a connection that has unread data. We do not rely on that alone: no caller's
cancellation ever reaches a command. Coalesced GETs run in a batching task no caller
awaits directly (callers await a plain future); every other command runs in its own task
behind :func:`asyncio.shield`. A cancelled caller just stops waiting; the command finishes,
reads its own reply and returns its connection to the pool cleanly. That also closes a
second hole redis-py leaves: ``BlockingConnectionPool.release`` awaits a lock, and a
cancellation landing there leaks the connection for good (a small pool then starves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    MaxConnectionsError,
    RedisClusterException,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sealgate.cache.breaker import Admission, CircuitBreaker
from sealgate.cache.codec import CacheDataError, decode_status, encode_status
from sealgate.cache.redis_url import is_cluster_url
from sealgate.errors import Error
from sealgate.verify.registry import ProofStatus

__all__ = ["RedisTier", "directory_channel", "redis_tier_for", "status_key"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The client a command runs on: one server's, or the cluster's (sealgate.cache.redis_cluster_tier).
Client: TypeAlias = Redis | RedisCluster

# What "Redis is not there" looks like from redis-py: the one place errors are mapped to
# availability. OSError covers the builtin TimeoutError (asyncio's, in 3.11) and socket
# errors that escape unwrapped. The cluster client adds two families, after its own
# retry has given up: ClusterError (CLUSTERDOWN, MASTERDOWN, redirections that never
# settle: "TTL exhausted") and RedisClusterException, which is not a RedisError at all
# (no reachable startup node, slots not covered, SlotNotCoveredError): uncaught, either
# would be a 500 where a miss is due. MaxConnectionsError is a ConnectionError; see
# _pool_exhausted.
AVAILABILITY_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ClusterError,
    RedisClusterException,
    OSError,
)

_RECONNECT_FIRST = 0.05  # listener backoff: first pause after a lost subscription
_RECONNECT_MAX = 1.0  # ... doubling up to this, as the gateway contract requires


class TierUnavailable(Error):
    """Redis is being skipped (the breaker is open) or did not answer."""


class _Unavailable(Exception):
    """Internal: Redis was skipped (breaker open, not started) or failed for availability."""


DEFAULT_NAMESPACE = "sealgate"


def status_key(code: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The Redis key of a code's cached status (what tools that fill the cache write)."""
    return f"{namespace}:p:{code}"


def directory_channel(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The channel provisioning changes are announced on (sealgate.gateway.announcements)."""
    return f"{namespace}:directory"


class RedisTier:
    """Proof statuses cached in Redis under ``{namespace}:p:{code}``, with invalidations
    published on ``{namespace}:invalidate`` and provisioning changes announced on
    ``{namespace}:directory`` (:mod:`sealgate.gateway.announcements`), both heard on one
    subscription.

    ``coalesce`` (default on) turns concurrent :meth:`get` calls into one MGET: requests
    arriving while an MGET is in flight go together in the next one, at most
    ``max_batch`` keys each.

    One server only: for a ``redis+cluster://`` URL use :func:`redis_tier_for`, which
    gives a :class:`sealgate.cache.redis_cluster_tier.RedisClusterTier` (same interface).
    """

    _cluster = False  # which kind of URL this class takes

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ttl_seconds: int = 3600,
        breaker_seconds: float = 1.0,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        max_connections: int = 64,
        pool_timeout: float = 0.25,
        health_check_interval: float = 5.0,
        coalesce: bool = True,
        max_batch: int = 256,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if is_cluster_url(url) != self._cluster:
            raise ValueError(
                "a Redis Cluster URL needs the cluster tier (redis_tier_for)"
                if is_cluster_url(url)
                else "the cluster tier needs a redis+cluster:// URL"
            )
        self._url = url
        self._prefix = status_key("", namespace)
        self._channel = f"{namespace}:invalidate"
        self._directory_channel = directory_channel(namespace)
        self._ttl = ttl_seconds
        self._socket_timeout = socket_timeout
        self._socket_connect_timeout = socket_connect_timeout
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._health_check_interval = health_check_interval
        self._coalesce = coalesce
        self._max_batch = max_batch
        self._breaker = CircuitBreaker(
            breaker_seconds, "Redis cache tier", log, meanwhile="answering from the registry"
        )
        self._client: Client | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # strong refs to shielded commands
        self._queue: list[tuple[str, asyncio.Future[bytes | str | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # Counted, and logged once each: either means a bug somewhere, not an outage.
        self.malformed_values = 0
        self.foreign_values = 0
        self.refused_writes = 0
        self._next_refusal_log = 1

    # -- lifecycle -------------------------------------------------------------------

    def _client_options(self) -> dict[str, object]:
        return {
            # A cache lookup that takes longer than a registry read is worthless: give up
            # on a read after 250 ms (then the breaker keeps the next second cheap).
            "socket_timeout": self._socket_timeout,
            # Same bound for TCP connect: a blackholed host must not stall requests.
            "socket_connect_timeout": self._socket_connect_timeout,
            # Bytes in, bytes out: values are msgpack, and decoding keys we never read
            # would only cost time.
            "decode_responses": False,
        }

    async def start(self) -> None:
        """Create the client. Never fails for availability: a down Redis only opens the
        breaker (one WARNING), and the tier comes back by itself when Redis does."""
        if self._client is not None:
            return
        self._client = self._open_client()
        # Learn the state now, so an outage at boot is logged at boot.
        with contextlib.suppress(_Unavailable, RedisError):
            await self._command(lambda redis: redis.ping())

    def _open_client(self) -> Client:
        pool = BlockingConnectionPool.from_url(
            self._url,
            # Bounded: at peak, many requests share few connections instead of opening
            # thousands of sockets against Redis's maxclients.
            max_connections=self._max_connections,
            # Waiting for a free connection is bounded too; past it the request is a
            # miss (ConnectionError "No connection available" → breaker), not a queue.
            timeout=self._pool_timeout,
            # One immediate retry on ConnectionError/TimeoutError only: it turns a stale
            # pooled socket (Redis restarted, idle-closed) into a reconnect instead of a
            # miss. No backoff: anything slower than one retry is the breaker's job.
            retry=Retry(NoBackoff(), 1, (RedisConnectionError, RedisTimeoutError)),
            # PING a connection idle for longer than this before using it, so a
            # connection dropped by a firewall is found before a request waits on it.
            health_check_interval=self._health_check_interval,
            **self._client_options(),
        )
        return Redis.from_pool(pool)

    async def close(self) -> None:
        client, self._client = self._client, None
        pending = [*self._tasks, *([self._flusher] if self._flusher else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for _, future in self._queue:
            if not future.done():
                future.set_result(None)
        self._queue.clear()
        if client is not None:
            await client.aclose()

    @property
    def available(self) -> bool:
        """False while the circuit breaker is open (Redis is being skipped)."""
        return self._client is not None and self._breaker.closed

    @property
    def ttl_seconds(self) -> int:
        """Every entry expires this long after its SET (a restored snapshot included)."""
        return self._ttl

    # -- commands ----------------------------------------------------------------------

    def _key(self, code: str) -> str:
        return self._prefix + code

    async def get(self, code: str) -> ProofStatus | None:
        """The cached status of ``code``; None on a miss, a bad value, or no Redis."""
        if self._client is None or not self._breaker.would_admit():
            return None
        try:
            if self._coalesce:
                data = await self._enqueue(code)
            else:
                key = self._key(code)
                data = await self._command(lambda redis: redis.get(key))
        except _Unavailable:
            return None
        except RedisError as exc:
            # The server answered, with an error (e.g. WRONGTYPE): a miss, not an outage.
            log.debug("Redis GET failed: %s", type(exc).__name__)
            return None
        if data is None:
            return None
        return self._decode(code, data)

    def _decode(self, code: str, data: bytes | str) -> ProofStatus | None:
        try:
            # str only if someone set decode_responses; then it is not ours to read.
            if not isinstance(data, bytes):
                raise CacheDataError("Redis returned text, not bytes")
            status = decode_status(data)
        except CacheDataError as exc:
            self.malformed_values += 1
            if self.malformed_values == 1:
                log.warning("malformed value in the Redis cache, treated as a miss: %s", exc)
            return None
        if status.code != code:
            # Cannot happen unless replies got crossed or keys were written wrongly; the
            # check is one string compare and turns such a bug into a miss.
            self.foreign_values += 1
            if self.foreign_values == 1:
                log.error("Redis returned a status for another code; treated as a miss")
            return None
        return status

    async def put(self, code: str, status: ProofStatus) -> None:
        """SET the status with the tier's TTL; best effort."""
        key, data, ttl = self._key(code), encode_status(status), self._ttl
        try:
            await self._command(lambda redis: redis.set(key, data, ex=ttl))
        except _Unavailable:
            pass  # best effort by contract; the breaker has said so already
        except RedisError as exc:
            # The server answered with a refusal (OOM under noeviction, a read-only
            # replica): each costs only a later registry read, but a tier that keeps
            # nothing must not go unnoticed. Logged at 1, 10, 100... refusals.
            self.refused_writes += 1
            if self.refused_writes >= self._next_refusal_log:
                self._next_refusal_log *= 10
                log.warning(
                    "Redis refused %d cache writes so far, the last: %s: %s",
                    self.refused_writes,
                    type(exc).__name__,
                    str(exc)[:200],
                )

    async def delete(self, codes: Collection[str]) -> bool:
        """DEL the codes' entries; True only if Redis confirmed."""
        if not codes:
            return True
        keys = [self._key(code) for code in codes]
        try:
            await self._command(lambda redis: redis.delete(*keys))
        except (_Unavailable, RedisError):
            return False
        return True

    async def publish(self, code: str) -> bool:
        """Announce on the invalidation channel that ``code`` changed; True if sent."""
        return await self._publish(self._channel, code)

    async def announce(self, message: str) -> bool:
        """Announce a provisioning change on the directory channel; True if sent."""
        return await self._publish(self._directory_channel, message)

    async def _publish(self, channel: str, message: str) -> bool:
        try:
            await self._command(lambda redis: redis.publish(channel, message))
        except (_Unavailable, RedisError):
            return False
        return True

    # -- running commands safely ------------------------------------------------------

    async def command(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        """Run one command of another component's (the shared failed-lookup limits)
        through this tier's pool and breaker; raises :class:`TierUnavailable` while
        Redis is skipped or unreachable, and a :class:`RedisError` it answered."""
        try:
            return await self._command(operation)
        except _Unavailable:
            raise TierUnavailable("Redis is unavailable") from None


    async def _command(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        """Run one command in its own task, shielded from the caller's cancellation."""
        client = self._client
        admission = self._breaker.admit() if client is not None else None
        if client is None or admission is None:
            raise _Unavailable
        task: asyncio.Task[T] = asyncio.get_running_loop().create_task(
            self._guarded(client, operation, admission)
        )
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        # If the caller is cancelled, shield() lets the task run on to the end of the
        # command; nobody awaits it then, so _forget retrieves its outcome.
        return await asyncio.shield(task)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # mark retrieved: an abandoned miss is not worth a log line

    async def _guarded(
        self, client: Client, operation: Callable[[Client], Awaitable[T]], admission: Admission
    ) -> T:
        """Run ``operation`` and tell the breaker how it went."""
        try:
            result = await operation(client)
        except AVAILABILITY_ERRORS as exc:
            if _pool_exhausted(exc):
                # Every pooled connection was busy for pool_timeout: this request is a
                # miss (load shedding), but Redis answered the others, so do not open
                # the breaker and push the whole load onto the registry.
                self._breaker.abandoned(admission)
            else:
                self._breaker.failed(admission, exc)
            raise _Unavailable from exc
        except RedisError:
            self._breaker.succeeded(admission)  # an error reply still proves Redis is up
            raise
        except BaseException:
            self._breaker.abandoned(admission)
            raise
        self._breaker.succeeded(admission)
        return result

    @staticmethod
    def _mget(keys: list[str]) -> Callable[[Client], Awaitable[list[bytes | str | None]]]:
        """The batch's read: one MGET (the cluster tier splits it by slot)."""
        return lambda redis: redis.mget(keys)

    async def _enqueue(self, code: str) -> bytes | str | None:
        future: asyncio.Future[bytes | str | None] = asyncio.get_running_loop().create_future()
        self._queue.append((code, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        # Cancelling the caller cancels only this future; the flusher skips it.
        return await future

    async def _flush(self) -> None:
        """Send queued GETs as MGETs, one in flight at a time, until the queue is empty."""
        client = self._client
        batch: list[tuple[str, asyncio.Future[bytes | str | None]]] = []
        try:
            while self._queue and client is not None:
                batch = [entry for entry in self._queue[: self._max_batch] if not entry[1].done()]
                del self._queue[: self._max_batch]
                if not batch:
                    continue
                admission = self._breaker.admit()
                values: list[bytes | str | None]
                if admission is None:
                    values = [None] * len(batch)
                else:
                    keys = [self._key(code) for code, _ in batch]
                    try:
                        values = await self._guarded(client, self._mget(keys), admission)
                    except _Unavailable:
                        values = [None] * len(batch)  # the breaker has logged it
                    except RedisError as exc:
                        log.debug("Redis MGET failed: %s", type(exc).__name__)
                        values = [None] * len(batch)
                for (_, future), value in zip(batch, values, strict=True):
                    if not future.done():
                        future.set_result(value)
                batch = []
        finally:
            # Anything still waiting (close() cancelled us, or a bug raised) gets a miss
            # rather than hanging forever.
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            self._flusher = None

    # -- invalidation ------------------------------------------------------------------

    async def listen(
        self,
        on_invalidate: Callable[[str], None],
        on_directory: Callable[[str], None] | None = None,
    ) -> None:
        """Call ``on_invalidate(code)`` for each invalidation and ``on_directory(message)``
        for each provisioning announcement, forever; cancel to stop.

        After a lost subscription it reconnects with backoff (≤ 1 s) and then calls each
        with ``"*"`` once: messages may have been missed, drop (re-read) everything.
        """
        handlers = {self._channel: on_invalidate}
        if on_directory is not None:
            handlers[self._directory_channel] = on_directory
        client: Redis | None = None
        backoff = _RECONNECT_FIRST
        missed = False  # a subscription was lost (or never made): signal "*" when back
        try:
            while True:
                fresh = self._subscriber_client(client)
                if client is not None and fresh is not client:
                    await client.aclose()
                client = fresh
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(*handlers)
                    if missed:
                        log.info("Redis invalidation channel resubscribed")
                        for handler in handlers.values():
                            self._deliver(b"*", handler)
                        missed = False
                    backoff = _RECONNECT_FIRST
                    await self._receive(pubsub, handlers)
                except AVAILABILITY_ERRORS as exc:
                    if not missed:
                        log.warning(
                            "Redis invalidation channel lost (%s); reconnecting",
                            type(exc).__name__,
                        )
                    missed = True
                finally:
                    with contextlib.suppress(*AVAILABILITY_ERRORS):
                        await pubsub.aclose()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RECONNECT_MAX)
        finally:
            if client is not None:
                await client.aclose()

    def _subscriber_client(self, previous: Redis | None) -> Redis:
        """The client to (re)subscribe with: after a loss, the same one (its pool
        reconnects to the one server). The cluster tier moves to another node instead."""
        if previous is not None:
            return previous
        return Redis.from_pool(self._subscriber_pool(BlockingConnectionPool.from_url, self._url))

    def _subscriber_pool(
        self, make: Callable[..., BlockingConnectionPool], *args: object, **options: object
    ) -> BlockingConnectionPool:
        # The subscriber's own pool: no retries (redis-py's retry would silently
        # reconnect and resubscribe, hiding the gap in which messages were lost) and no
        # redis-py health check (it swallows the PONG we use for our own liveness check
        # in _receive).
        return make(
            *args,
            max_connections=2,
            timeout=self._pool_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            **self._client_options(),
            **options,
        )

    async def _receive(self, pubsub: PubSub, handlers: dict[str, Callable[[str], None]]) -> None:
        """Deliver messages until the connection fails; raise when it does.

        A killed server shows as EOF at once, but a silently dropped connection (NAT,
        partition) only shows when a reply does not come, so when the channel is idle
        we PING on it and give up if neither the PONG nor anything else arrives.
        """
        loop = asyncio.get_running_loop()
        idle_ping = max(self._health_check_interval, 0.5)
        liveness_timeout = max(1.0, 4 * self._socket_timeout)
        last_heard = loop.time()
        ping_sent: float | None = None
        while True:
            message = await pubsub.get_message(timeout=min(1.0, idle_ping))
            now = loop.time()
            if message is not None:
                last_heard, ping_sent = now, None
                if message["type"] == "message":
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if (handler := handlers.get(channel)) is not None:
                        self._deliver(message["data"], handler)
                continue
            if ping_sent is not None:
                if now - ping_sent > liveness_timeout:
                    raise RedisTimeoutError("no reply to PING on the invalidation channel")
            elif now - last_heard >= idle_ping:
                await pubsub.ping()
                ping_sent = now

    @staticmethod
    def _deliver(data: object, on_invalidate: Callable[[str], None]) -> None:
        try:
            code = data.decode("ascii") if isinstance(data, bytes) else "*"
        except UnicodeDecodeError:
            code = "*"  # unreadable: the safe reading is "drop everything"
        try:
            on_invalidate(code)
        except Exception:
            # A broken callback must not end invalidation for the process.
            log.exception("on_invalidate callback failed")


def _pool_exhausted(error: BaseException) -> bool:
    # redis-py raises a plain ConnectionError("No connection available.") from the
    # pool's wait timeout; the cause is the only structured tell. The cluster client's
    # per-node pools do not wait: they raise MaxConnectionsError at once (the cluster
    # tier bounds its commands so that it does not happen; if it does, it is still load,
    # not an outage).
    return isinstance(error, MaxConnectionsError) or (
        isinstance(error, RedisConnectionError)
        and isinstance(error.__cause__, TimeoutError)
        and "No connection available" in str(error)
    )


def redis_tier_for(url: str, **options: Any) -> RedisTier:
    """The tier for ``url``: :class:`RedisTier` for one server, the cluster tier for a
    ``redis+cluster://`` URL (imported only then). ``options`` as :class:`RedisTier`'s."""
    if is_cluster_url(url):
        from sealgate.cache.redis_cluster_tier import RedisClusterTier

        return RedisClusterTier(url, **options)
    return RedisTier(url, **options)

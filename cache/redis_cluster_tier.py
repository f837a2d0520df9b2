"""The shared cache tier on a Redis Cluster (``SEALGATE_REDIS_URL=redis+cluster://…``).

The same contract as :class:`sealgate.cache.redis_tier.RedisTier`, which this extends: misses,
never errors, when the cluster or a node is gone (one circuit breaker for the whole
tier), commands shielded from callers' cancellation, coalesced GETs. What differs:

- Keys spread over the cluster's 16384 hash slots, one code's key to one slot. A batch
  of coalesced GETs is split by slot (``mget_nonatomic``: one MGET per slot, pipelined
  to each node, the nodes concurrently, answers put back in the batch's order); DEL is
  split the same way by the cluster client. The keys deliberately carry no hash tag
  (``{…}``): one tag would put every key, hence the whole city's cache and all its
  reads, on one node, which is the opposite of why one runs a cluster.
- The cluster client's per-node pools do not wait for a free connection, they fail at
  once (MaxConnectionsError), and its pipeline then closes every connection to retry.
  So the tier bounds its own commands in flight (a semaphore of ``max_connections``,
  waited on for at most ``pool_timeout``, as the single-server tier's blocking pool):
  a command uses at most one connection per node, so no node's pool overflows.
- Invalidations: classic PUBLISH in a cluster reaches every node over the cluster bus,
  so the listener subscribes on one node, chosen at random (gateways spread over the
  nodes), and moves to the next one when it loses it, then signals ``"*"`` as after
  any gap.

One breaker, not one per node: with ``cluster-require-full-coverage yes`` (Redis's
default) a primary lost with no replica to replace it makes every node answer
CLUSTERDOWN after ``cluster-node-timeout``, so the cluster is down as a whole anyway;
with replicas, it is back once one is promoted, and the breaker's next probe finds it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sealgate.cache.breaker import Admission
from sealgate.cache.redis_tier import Client, RedisTier, _Unavailable
from sealgate.cache.redis_url import ClusterUrl, parse_cluster_url

__all__ = ["RedisClusterTier"]

T = TypeVar("T")

# Connections a node's pool may hold beyond the tier's bound: the cluster client's own
# topology refresh (CLUSTER SLOTS, COMMAND) runs inside a command that already holds one.
_POOL_HEADROOM = 4


class RedisClusterTier(RedisTier):
    """:class:`RedisTier` over a Redis Cluster; takes the same options, and a
    ``redis+cluster://`` or ``rediss+cluster://`` URL (see :mod:`sealgate.cache.redis_url`)."""

    _cluster = True

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._address: ClusterUrl = parse_cluster_url(url)
        self._in_flight = asyncio.Semaphore(self._max_connections)
        # Where the listener starts: spreads the gateways' subscriptions over the nodes.
        self._subscriber_turn = random.randrange(1 << 16)  # noqa: S311 (not a secret)

    def _auth_options(self) -> dict[str, object]:
        options: dict[str, object] = {
            "username": self._address.username,
            "password": self._address.password,
        }
        if self._address.tls:
            options["ssl_ca_certs"] = self._address.ssl_ca_certs
        return options

    def _open_client(self) -> Client:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._address.nodes],
            # Refuse a cluster whose slots are not all served (mid-setup, or a primary
            # lost): that is an outage to the breaker, not a cache that misses at random.
            require_full_coverage=True,
            max_connections=self._max_connections + _POOL_HEADROOM,
            # One immediate retry, as for one server: after a node restarts or a slot
            # moves, the client refreshes its map of the slots and tries once more;
            # anything slower is the breaker's job. (The default is 3 retries with
            # backoff, and 0.25 s sleeps on CLUSTERDOWN: seconds per request.)
            retry=Retry(NoBackoff(), 1),
            health_check_interval=self._health_check_interval,
            ssl=self._address.tls,
            **self._auth_options(),  # type: ignore[arg-type]
            **self._client_options(),  # type: ignore[arg-type]
        )

    @staticmethod
    def _mget(keys: list[str]) -> Callable[[Client], Awaitable[list[bytes | str | None]]]:
        # MGET across slots is refused (CROSSSLOT) even when the slots share a node:
        # one MGET per slot, pipelined per node, nodes in parallel, results in order.
        return lambda cluster: cast(RedisCluster, cluster).mget_nonatomic(keys)

    async def _guarded(
        self, client: Client, operation: Callable[[Client], Awaitable[T]], admission: Admission
    ) -> T:
        """Wait (≤ ``pool_timeout``) for one of ``max_connections`` slots, then run."""
        try:
            if self._in_flight.locked():
                async with asyncio.timeout(self._pool_timeout):
                    await self._in_flight.acquire()
            else:
                await self._in_flight.acquire()  # free: returns without waiting
        except TimeoutError as exc:
            # Load, not an outage: this request is a miss, the breaker stays closed (as
            # the single-server tier's "No connection available").
            self._breaker.abandoned(admission)
            raise _Unavailable from exc
        except BaseException:
            self._breaker.abandoned(admission)
            raise
        try:
            return await super()._guarded(client, operation, admission)
        finally:
            self._in_flight.release()

    # -- invalidation ------------------------------------------------------------------

    def _subscriber_nodes(self) -> list[tuple[str, int]]:
        """Every node the client knows (primaries and replicas), then the URL's."""
        nodes: list[tuple[str, int]] = []
        if isinstance(self._client, RedisCluster):
            nodes = [(node.host, int(node.port)) for node in self._client.get_nodes()]
        nodes += [node for node in self._address.nodes if node not in nodes]
        return nodes

    def _subscriber_client(self, previous: Redis | None) -> Redis:
        """A client on the next node: a node lost (killed, failed over, partitioned) is
        left for another one; its pool is not given the chance to reconnect to it."""
        nodes = self._subscriber_nodes()
        host, port = nodes[self._subscriber_turn % len(nodes)]
        self._subscriber_turn += 1
        connection_class: type[Connection] = SSLConnection if self._address.tls else Connection
        pool = self._subscriber_pool(
            BlockingConnectionPool,
            host=host,
            port=port,
            connection_class=connection_class,
            **self._auth_options(),
        )
        return Redis.from_pool(pool)

"""Provisioning changes announced to every worker of every instance (docs/design.md §6.2).

Whoever makes a change to a client or a seal's suspension (an admin's HTTP route, the
command line) makes it in the directory, then announces it on Redis, on the channel
``{namespace}:directory`` that every worker's cache tier already listens on
(:meth:`sealgate.cache.redis_tier.RedisTier.listen`). A worker that hears it re-reads at
once: it forgets the client's remembered token, or reloads its seal catalog.

A message is only a hint to re-read the directory, never the new state: whoever can
publish on Redis can make workers read again, nothing more (no grant, no token, no seal
comes from a message). Messages may be lost (no Redis, Redis down, a subscription
dropped): then the bounds hold as without Redis, the token cache's lifetime and the
catalog's refresh, and a listener that lost its subscription re-reads everything once
it is back.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sealgate.cache.redis_url import is_cluster_url, parse_cluster_url
from sealgate.gateway.administration import MAX_ID, Change
from sealgate.gateway.auth import Authenticator

if TYPE_CHECKING:  # redis is imported only where Redis is configured
    import redis

    from sealgate.cache.redis_tier import RedisTier

__all__ = ["EVERYTHING", "SEALS", "Announcer", "Hints", "announce_now", "hint_for"]

log = logging.getLogger(__name__)

EVERYTHING = "*"  # re-read every client and the catalog (sent by the listener itself)
SEALS = "seals"  # reload the seal catalog
_CLIENT = "client:"  # + a client id: forget that client's remembered tokens
_CLI_TIMEOUT = 1.0  # the command line waits no longer on Redis than this, per step


def hint(action: str, subject: str) -> str | None:
    """What a change announces: which part of the directory to re-read (a client's
    token, or the catalog: seals, their keys and the matters), or ``None``."""
    if action.startswith(("seal-", "matter-")):
        return SEALS
    if action.startswith("client-"):
        return _CLIENT + subject
    return None


def hint_for(change: Change) -> str:
    """What a provisioning change (a client's or a seal's) announces."""
    announced = hint(change.action, change.subject)
    if announced is None:  # pragma: no cover - administration makes no other change
        raise ValueError(f"{change.action} announces nothing")
    return announced


class Hints:
    """What a worker does on hearing an announcement: forget a client's token, or wake
    its catalog's refresh. Anything else heard is ignored."""

    def __init__(self, auth: Authenticator, reload_catalog: Callable[[], None]) -> None:
        self._auth = auth
        self._reload_catalog = reload_catalog

    def __call__(self, message: str) -> None:
        if message == EVERYTHING:
            self._auth.forget_everyone()
            self._reload_catalog()
        elif message == SEALS:
            self._reload_catalog()
        elif message.startswith(_CLIENT) and _plain_id(client_id := message[len(_CLIENT) :]):
            self._auth.forget(client_id)
        else:
            log.debug("unknown provisioning announcement ignored")


def _plain_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and value.isascii() and value.isprintable()


class Announcer:
    """A gateway worker's announcements, on its cache tier's pool (no connection of its
    own); without Redis, or while it is unavailable, the other workers take a change
    within their bounds, and the log says so."""

    def __init__(self, shared: RedisTier | None) -> None:
        self._shared = shared

    async def announce(self, change: Change) -> None:
        if self._shared is not None and not await self._shared.announce(hint_for(change)):
            log.warning(
                "%s %s not announced (Redis unavailable): other workers take it within"
                " their token cache or catalog refresh",
                change.action,
                change.subject,
            )


def announce_now(redis_url: str | None, action: str, subject: str) -> None:
    """The command line's announcement of a change it made (any that serving gateways
    hold: clients, seals and their keys, matters): one connection at a time, bounded
    waits. If Redis cannot be reached the change stands and the operator is told the
    bound."""
    message = hint(action, subject)
    if redis_url is None or message is None:
        return
    import redis

    from sealgate.cache.redis_tier import AVAILABILITY_ERRORS, directory_channel

    unreachable: tuple[type[BaseException], ...] = (*AVAILABILITY_ERRORS, redis.RedisError)
    failure: BaseException | None = None
    for connect in _connections(redis_url):
        try:
            with connect() as conn:
                conn.publish(directory_channel(), message)
            return
        except unreachable as exc:
            failure = exc
    print(
        f"sealgate: warning: {action} {subject} done, but not announced on"
        f" Redis ({type(failure).__name__}): serving gateways take it within their token"
        " cache (clients, 10 s by default) or catalog refresh (seals, 5 s)",
        file=sys.stderr,
    )


def _connections(url: str) -> list[Callable[[], redis.Redis]]:
    """Where to publish: the one server, or each node of a cluster in turn (a cluster's
    PUBLISH reaches the subscribers on every node: any one node will do)."""
    import redis

    if not is_cluster_url(url):
        return [
            lambda: redis.Redis.from_url(
                url, socket_timeout=_CLI_TIMEOUT, socket_connect_timeout=_CLI_TIMEOUT
            )
        ]
    address = parse_cluster_url(url)
    return [
        functools.partial(
            redis.Redis,
            host=host,
            port=port,
            username=address.username,
            password=address.password,
            ssl=address.tls,
            ssl_ca_certs=address.ssl_ca_certs,
            socket_timeout=_CLI_TIMEOUT,
            socket_connect_timeout=_CLI_TIMEOUT,
        )
        for host, port in address.nodes
    ]

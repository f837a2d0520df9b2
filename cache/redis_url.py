"""Which Redis ``SEALGATE_REDIS_URL`` names: one server, or a Redis Cluster.

- ``redis://HOST:PORT/DB``, ``rediss://…`` (TLS), ``unix://PATH``: one server (or a
  Sentinel-managed address in front of one), read by redis-py's ``from_url``;
- ``redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]`` (``rediss+cluster://``
  for TLS, optionally ``?ssl_ca_certs=PATH``): a Redis Cluster, reached through the
  listed startup nodes (any reachable one is enough to learn the rest).

A separate scheme, not a query flag: a single-server client pointed at a cluster node
works until the first key on another node (MOVED), which must not be found in production.

Pure parsing, no redis import: the settings check a URL before anything starts, so that
a bad one is one clear line at startup rather than a traceback in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from sealgate.errors import Error

__all__ = ["ClusterUrl", "RedisUrlError", "check_redis_url", "is_cluster_url", "parse_cluster_url"]

_SINGLE_SCHEMES = frozenset({"redis", "rediss", "unix"})
_CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme → TLS
_DEFAULT_PORT = 6379
_USAGE = (
    "use redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix://PATH, or "
    "redis+cluster://HOST:PORT[,HOST:PORT...] (rediss+cluster:// for TLS)"
)


class RedisUrlError(Error, ValueError):
    """The Redis URL cannot be used; the message says why (never the password)."""


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]  # the startup nodes, in the URL's order
    tls: bool
    username: str | None = None
    password: str | None = None
    ssl_ca_certs: str | None = None


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise RedisUrlError(f"not a Redis URL (no scheme): {_USAGE}")
    return scheme.lower()


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in _CLUSTER_SCHEMES


def check_redis_url(url: str) -> None:
    """Raise :class:`RedisUrlError` unless ``url`` is a usable Redis or cluster URL."""
    scheme = _scheme(url)
    if scheme in _CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in _SINGLE_SCHEMES:
        raise RedisUrlError(f"unsupported Redis URL scheme {scheme!r}: {_USAGE}")


def _node(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") > 1:
        raise RedisUrlError(f"Redis Cluster node {text!r}: write an IPv6 address as [ADDR]:PORT")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise RedisUrlError(f"Redis Cluster node {text!r} has no host")
    if not port_text:
        return host, _DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"Redis Cluster node {text!r}: port must be 1-65535")
    return host, int(port_text)


def parse_cluster_url(url: str) -> ClusterUrl:
    try:
        return _parse_cluster_url(url)
    except RedisUrlError:
        if "@" not in url:
            raise
        # The message may quote a piece of the URL, and with credentials in it (a password
        # holding an unencoded '?', '/' or '@' ends up in a "node" or "option") that piece
        # may be part of the password: say what to do, quote nothing.
        raise RedisUrlError(
            "the Redis Cluster URL cannot be read (not shown: it holds credentials); "
            "percent-encode ':', '@', '/', '?' and '#' in the user name and password, "
            f"and {_USAGE}"
        ) from None


def _parse_cluster_url(url: str) -> ClusterUrl:
    scheme = _scheme(url)
    if scheme not in _CLUSTER_SCHEMES:
        raise RedisUrlError(f"not a Redis Cluster URL: {_USAGE}")
    rest = url.partition("://")[2]
    rest, _, query = rest.partition("?")
    location, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise RedisUrlError("a Redis Cluster has only database 0: drop the /DB from the URL")
    username = password = None
    if "@" in location:
        userinfo, _, location = location.rpartition("@")
        user_text, has_password, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if has_password else None
    nodes = tuple(_node(part.strip()) for part in location.split(",") if part.strip())
    if not nodes:
        raise RedisUrlError(f"the Redis Cluster URL names no node: {_USAGE}")
    options = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    ssl_ca_certs = None
    for name, values in options.items():
        if name == "ssl_ca_certs" and _CLUSTER_SCHEMES[scheme] and values[-1]:
            ssl_ca_certs = values[-1]
        else:
            raise RedisUrlError(
                f"unsupported Redis Cluster URL option {name!r} "
                "(only ssl_ca_certs=PATH, with rediss+cluster://)"
            )
    return ClusterUrl(
        nodes=nodes,
        tls=_CLUSTER_SCHEMES[scheme],
        username=username,
        password=password,
        ssl_ca_certs=ssl_ca_certs,
    )

"""What every webhook the gateway sends shares: the Standard Webhooks signature, the
retry policy, and where a delivery may go.

**Signature** (https://www.standardwebhooks.com): headers ``webhook-id`` (the event's
id: the same on every retry), ``webhook-timestamp`` (the attempt's, Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>``. A receiver
checks it with any Standard Webhooks library and the secret ``whsec_<base64>``.

**Secrets are derived, not stored**: a subscription's secret is the HMAC of its id under
the home's ``webhook-key`` (shared by every instance, like the other secrets), so any
instance can sign for any subscription, and the registry, which every instance and its
backups hold, keeps no secret a leak would give away. The price: a secret cannot be
rotated apart from its subscription (a client makes a new subscription instead).

**Targets**: ``https://`` anywhere public; ``http://`` only to a loopback address unless
the home allows it (``[notices] allow_http``); never to link-local (169.254.0.0/16, where
clouds answer with instance credentials), private, multicast or reserved addresses
unless the home lists their network in ``[notices] allow_networks``. A name is checked
on every connection, whatever it resolves to then (:class:`TargetResolver`), so a name
that later resolves inward is refused at the delivery, not only at the subscription.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from sealgate.errors import Error

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
_SECRET_LABEL = b"sealgate subscription secret\x00"
MAX_URL = 2048

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Error):
    """A webhook URL the gateway will not send to (the message says why)."""


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value: ``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body`` under ``secret``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def subscription_secret(home_key: bytes, subscription_id: str) -> bytes:
    """A subscription's signing secret, derived from the home's ``webhook-key``."""
    return hmac.new(home_key, _SECRET_LABEL + subscription_id.encode(), hashlib.sha256).digest()


def secret_text(secret: bytes) -> str:
    """The secret as a receiver is given it: ``whsec_`` and its base64."""
    return SECRET_PREFIX + base64.b64encode(secret).decode()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``first`` seconds after the first failure, doubling up to
    ``longest``; given up once the next attempt would fall past ``span`` seconds after
    the first (None: never given up)."""

    first: float
    longest: float
    span: float | None = None

    def wait(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        return float(min(self.first * 2 ** min(failures - 1, 62), self.longest))

    def next_attempt(self, failures: int, began: float, now: float) -> float | None:
        """When to try again after the ``failures``-th failure, or None to give up."""
        at = now + self.wait(failures)
        if self.span is not None and at > began + self.span:
            return None
        return at


# Change notices: 5 s, 10 s, … up to an hour apart, for a day (about 30 attempts).
NOTICE_RETRIES = RetryPolicy(first=5.0, longest=3600.0, span=86400.0)


@dataclass(frozen=True, slots=True)
class TargetRules:
    """The home's ``[notices]`` settings: where deliveries may go besides the public
    internet over HTTPS."""

    allow_http: bool = False
    allow_networks: tuple[Network, ...] = field(default=())

    def check_address(self, address: Address) -> None:
        if any(address in network for network in self.allow_networks):
            return
        if address.is_loopback:
            return
        if address.is_link_local:
            raise TargetRefused("a link-local address (cloud metadata lives there)")
        if address.is_private or address.is_multicast or address.is_reserved:
            raise TargetRefused("a private, multicast or reserved address")
        if address.is_unspecified or not address.is_global:
            raise TargetRefused("not a public address")

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port of an acceptable URL; :class:`TargetRefused` otherwise.
        A literal address is checked here; a name when it is resolved."""
        if len(url) > MAX_URL or not url.isascii() or not url.isprintable():
            raise TargetRefused(f"a URL is printable ASCII of at most {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise TargetRefused("not a URL") from None
        host = parts.hostname
        if parts.scheme not in ("https", "http") or not host:
            raise TargetRefused("an https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("no credentials in the URL: the signature authenticates")
        if parts.fragment:
            raise TargetRefused("no fragment")
        literal = _literal(host)
        loopback = literal is not None and literal.is_loopback
        if parts.scheme == "http" and not self.allow_http and not loopback:
            raise TargetRefused("http:// only to a loopback address; use https://")
        if literal is not None:
            self.check_address(literal)
        return host, port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class TargetResolver(AbstractResolver):
    """Resolves as the system does, and refuses the whole name if any address it gives
    is one :class:`TargetRules` refuses: checked at every connection."""

    def __init__(self, rules: TargetRules) -> None:
        self._rules = rules
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            self._rules.check_address(ipaddress.ip_address(entry["host"]))
        return found

    async def close(self) -> None:
        await self._inner.close()


async def check_target(rules: TargetRules, url: str) -> None:
    """:meth:`TargetRules.check_url`, and a name resolved now, every address checked:
    what a subscription is refused for at once rather than at each delivery."""
    host, port = rules.check_url(url)
    if _literal(host) is not None:
        return
    resolver = TargetResolver(rules)
    try:
        await resolver.resolve(host, port, socket.AF_UNSPEC)
    except TargetRefused:
        raise
    except OSError:
        raise TargetRefused("the host name does not resolve") from None
    finally:
        await resolver.close()


def rules_from_config(table: Any) -> TargetRules:
    """``[notices]`` of config.toml: ``allow_http`` (true/false) and ``allow_networks``
    (a list of CIDRs). ValueError names what is wrong."""
    if table is None:
        return TargetRules()
    if not isinstance(table, dict) or set(table) - {"allow_http", "allow_networks"}:
        raise ValueError("[notices] takes allow_http, allow_networks and retention_days")
    allow_http = table.get("allow_http", False)
    if not isinstance(allow_http, bool):
        raise ValueError("[notices] allow_http must be true or false")
    networks = table.get("allow_networks", [])
    if not isinstance(networks, list):
        raise ValueError("[notices] allow_networks is a list of networks (CIDR)")
    try:
        parsed = tuple(ipaddress.ip_network(str(n)) for n in networks)
    except ValueError as exc:
        raise ValueError(f"[notices] allow_networks: {exc}") from None
    return TargetRules(allow_http, parsed)

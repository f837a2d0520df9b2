"""The audit heads' second home: an append-only sink the home's owner cannot rewrite.

Whoever owns an instance's home owns its trail, its head file and (through the PIN in
``secrets/``) the audit key: such an insider can rewrite the trail and sign it afresh.
What they cannot do is take back what has already left the machine. Every signed head
(each checkpoint's, the gateway's every 10 s and each CLI action's) is also appended to
a **Redis stream on another machine** (``audit_sink = redis://USER@HOST:PORT/DB``), one
stream per instance (``sealgate:audit-heads:<instance>``, the instance named by its audit
key), and ``sealgate audit verify --against SINK`` requires the trail to hold every head
ever pushed there: a trail cut back, or rewritten and re-signed, does not.

Why a Redis stream: the city already runs Redis, a stream is append-only by its own
commands, and Redis's ACLs let the sink's user run ``XADD``, ``XRANGE`` and ``XINFO`` on
those keys and nothing else (no ``XDEL``, ``XTRIM``, ``XSETID``, ``DEL``, ``FLUSHDB``,
``CONFIG``): docs/deployment.md has the ``ACL SETUSER`` line. ``XADD`` can still trim
(its ``MAXLEN`` argument, which ACLs cannot forbid), but a stream counts every entry ever
added (``entries-added``) and the newest one removed (``max-deleted-entry-id``), which
only ``XSETID`` (refused) could reset: the check treats any removal as a break. Why not a
directory: a file the gateway's account can create there, that account can also delete
or replace; only a service on the other side can refuse that.

A push that fails is logged and the head is pushed with the next checkpoint (the newest
head vouches for everything before it); the gateway keeps serving, for its trail is
still written and signed at home.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from sealgate.errors import Error
from sealgate.verify.audit import AuditError, SignedHead

log = logging.getLogger("sealgate.audit")

STREAM_PREFIX = "sealgate:audit-heads:"
_PAGE = 1000
_TIMEOUT = 2.0


class SinkError(Error):
    """The sink cannot be reached, or shows that heads were removed from it."""


def instance_name(audit_key_der: bytes) -> str:
    """An instance's name in the sink: its audit key's fingerprint (SPKI, SHA-256)."""
    return hashlib.sha256(audit_key_der).hexdigest()[:32]


def _fields(head: SignedHead) -> dict[str, str]:
    return {"head": head.to_json().decode()}


@dataclass(frozen=True, slots=True)
class HeadSink:
    """One instance's stream in the sink at ``url``."""

    url: str
    instance: str

    @property
    def stream(self) -> str:
        return STREAM_PREFIX + self.instance

    def push(self, head: SignedHead) -> None:
        """Append ``head`` (the command line's way); raises :class:`SinkError`."""
        try:
            with _connect(self.url) as conn:
                conn.xadd(self.stream, _fields(head))
        except redis.RedisError as exc:
            raise SinkError(f"the audit sink refused the head ({type(exc).__name__})") from None

    async def push_async(self, head: SignedHead) -> None:
        """Append ``head`` from a worker; a failure is logged, never raised (the next
        checkpoint pushes a newer head, which vouches for this one's records too)."""
        conn = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT
        )
        try:
            async with asyncio.timeout(2 * _TIMEOUT):  # a sink away never holds a checkpoint
                await conn.xadd(self.stream, _fields(head))  # type: ignore[arg-type]
        except (redis.RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "audit head %d not pushed to the sink (%s); the next checkpoint's will be",
                head.seq,
                type(exc).__name__,
            )
        finally:
            await conn.aclose()

    def heads(self) -> list[SignedHead]:
        """Every head this instance ever pushed, oldest first; :class:`SinkError` if the
        sink cannot be read or shows that any were removed."""
        try:
            with _connect(self.url) as conn:
                if not conn.exists(self.stream):
                    return []
                info: dict[Any, Any] = conn.xinfo_stream(self.stream)
                entries = _entries(conn, self.stream)
        except redis.RedisError as exc:
            raise SinkError(f"the audit sink cannot be read ({type(exc).__name__})") from None
        added = int(info.get("entries-added", len(entries)))
        deleted = _text(info.get("max-deleted-entry-id", "0-0"))
        if added != len(entries) or deleted != "0-0":
            raise SinkError(
                f"{added - len(entries)} of the {added} heads pushed to the sink were removed"
                f" from it (the newest removed: {deleted})"
            )
        heads = []
        for entry_id, fields in entries:
            try:
                heads.append(SignedHead.from_json(fields[b"head"]))
            except (KeyError, AuditError):
                raise SinkError(f"the sink's entry {_text(entry_id)} is not a head") from None
        return heads


def _connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)


def _entries(conn: redis.Redis, stream: str) -> list[tuple[Any, dict[bytes, bytes]]]:
    entries: list[tuple[Any, dict[bytes, bytes]]] = []
    start = "-"
    while True:
        page: list[Any] = list(conn.xrange(stream, min=start, count=_PAGE) or [])
        entries.extend(page)
        if len(page) < _PAGE:
            return entries
        start = "(" + _text(page[-1][0])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

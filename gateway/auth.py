"""Bearer-token authentication and role checks.

Tokens are looked up by digest in the directory (off the event loop) and remembered for
a short while (:data:`CACHE_SECONDS`, or config.toml's ``token_cache``), so a client
changed or removed elsewhere takes effect here within it when no announcement on Redis
says so sooner (:mod:`sealgate.gateway.announcements`), and a flood of bad tokens costs
one directory read per token per window rather than one per request.

Through a directory outage (docs/design.md §11) a remembered answer keeps serving for
``outage_freshness`` seconds past its window: a client removed meanwhile is refused that
much later, which is the price of authenticating at all while the directory is away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from sealgate.gateway.problems import Problem
from sealgate.verify.directory import Client, Directory, DirectoryUnavailable, Role

CLIENT = web.RequestKey("client", Client)  # who is asking, once authenticated
CACHE_SECONDS = 10.0
MAX_CACHED = 100_000
MAX_TOKEN = 200
MAX_HEADER = len("Bearer ") + MAX_TOKEN + 8  # a little whitespace, no more


def unauthenticated() -> Problem:
    # A fresh exception each time: a shared one would keep every raise's traceback.
    return Problem(
        401,
        "unauthenticated",
        "A valid bearer token is required",
        headers={"WWW-Authenticate": 'Bearer realm="sealgate"'},
    )


class Authenticator:
    def __init__(
        self,
        directory: Directory,
        *,
        read: Callable[[str], Awaitable[Client | None]] | None = None,
        outage_freshness: float = 0.0,
        lifetime: float = CACHE_SECONDS,
    ) -> None:
        self._directory = directory
        # How a token is read: off the event loop by default; the gateway passes its
        # bounded read (sealgate.gateway.bounded.BoundedDirectory).
        self._read = read or self._read_in_thread
        self._outage_freshness = outage_freshness
        self._lifetime = lifetime  # config.toml token_cache
        self._cache: dict[str, tuple[float, Client | None]] = {}

    async def _read_in_thread(self, token: str) -> Client | None:
        return await asyncio.to_thread(self._directory.client_by_token, token)

    def remembered(self, header: str) -> Client | None:
        """The known client behind ``header`` if it is remembered and fresh, with no work
        at all; ``None`` sends the caller the full way (:meth:`client`)."""
        if len(header) > MAX_HEADER:  # never remembered; not worth hashing
            return None
        cached = self._cache.get(header)
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    async def client(self, request: web.Request) -> Client:
        headers = request.headers.getall("Authorization", ())
        if len(headers) > 1:
            # A proxy may read the first and this server the last (or the other way
            # round): which client is asking must not depend on who reads.
            raise Problem(
                400,
                "duplicate-authorization",
                "More than one Authorization header",
                "send one Authorization header",
            )
        header = headers[0] if headers else ""
        if len(header) > MAX_HEADER:  # before the cache, which is keyed by the header
            raise unauthenticated()
        # Keyed by the header as sent: a known client costs one dictionary read.
        cached = self._cache.get(header)
        if cached is not None and cached[0] > time.monotonic():
            client = cached[1]
        else:
            client = await self._look_up(header)
        if client is None:
            raise unauthenticated()
        request[CLIENT] = client
        return client

    async def _look_up(self, header: str) -> Client | None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if (
            scheme.lower() != "bearer"
            or not token
            or len(token) > MAX_TOKEN
            or not token.isascii()
            or not token.isprintable()
        ):
            return None  # not remembered: malformed headers must not fill the cache
        try:
            client = await self._read(token)
        except DirectoryUnavailable:
            known = self._cache.get(header)
            if known is None or known[0] + self._outage_freshness <= time.monotonic():
                raise
            return known[1]  # as remembered; the entry is not renewed
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[header] = (time.monotonic() + self._lifetime, client)
        return client

    def forget(self, client_id: str) -> None:
        """Drop what this process remembers of a client an admin just changed or removed
        (here, or elsewhere and announced: :mod:`sealgate.gateway.announcements`)."""
        stale = [
            h for h, (_, c) in self._cache.items() if c is not None and c.client_id == client_id
        ]
        for header in stale:
            del self._cache[header]

    def forget_everyone(self) -> None:
        """Drop every remembered client: announcements may have been missed."""
        self._cache.clear()

    async def require(self, request: web.Request, *roles: Role) -> Client:
        client = await self.client(request)
        if client.role not in roles:
            raise Problem(
                403,
                "forbidden-role",
                "This client's role may not do that",
                f"needs role {' or '.join(r.value for r in roles)}",
            )
        return client


def require_purpose(client: Client, purpose: str) -> None:
    if purpose not in client.purposes:
        raise Problem(
            403,
            "purpose-not-granted",
            "This client may not check proofs for that purpose",
            # not echoed: what was typed there may be anything, an identity number too
            "the purpose given is not granted to this client",
        )

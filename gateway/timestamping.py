"""Signature timestamps for sealing: the RFC 3161 client of the city's TSA (``tsa_url``).

Each proof's signature is stamped by its own request (RFC 3161 has one imprint per
request); a batch's requests go out together, over kept-alive connections, so a batch
of 1,000 waits for about the slowest of its rounds, not for 1,000 round trips in a row.
Every answer is checked before it is embedded (status, nonce, imprint, the token's
signature, the TSA's chain to ``tsa-roots.pem``): a proof must never carry a token its
verifiers will refuse.

When the TSA cannot stamp (down, slow, refusing, or answering tokens that do not
verify), :meth:`Timestamper.stamp` raises :class:`TsaUnavailable`, and by default the
sealing fails whole: 503 with ``Retry-After``, nothing signed is stored. The default,
because a proof without a timestamp stands on its self-asserted signing time alone (what
issue 25's forgery exploited), and a city that has decided on B-T proofs must not get
B-B ones quietly on a bad day; the issuing system retries, as it does for an HSM outage.
A city that would rather issue than wait sets ``tsa_unavailable = "seal-untimestamped"``
(:class:`sealgate.gateway.sealing.SealingService`): such proofs are sealed without, each
answer says ``Sealgate-Timestamped: false``, and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from types import TracebackType
from typing import Self

import aiohttp

from sealgate.crypto.errors import BadTimestamp, TimestampRefused
from sealgate.crypto.timestamps import (
    read_response,
    signature_timestamp_attributes,
    timestamp_request,
)
from sealgate.crypto.verification import TrustList
from sealgate.errors import Error

__all__ = ["TSA_TIMEOUT", "Timestamper", "TsaUnavailable"]

log = logging.getLogger("sealgate.gateway.timestamping")

#: The longest one request to the TSA may take, its wait for a connection included.
TSA_TIMEOUT = 5.0
#: Connections kept open to the TSA per worker: a batch's requests share them.
TSA_CONNECTIONS = 32
#: How long a client is told to wait before retrying a sealing the TSA could not stamp.
RETRY_AFTER = 5
#: A TimeStampResp with its token and certificate is a few KiB.
MAX_RESPONSE = 64 * 1024

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


class TsaUnavailable(Error):
    """The TSA did not stamp a signature; nothing was sealed. Answered 503."""

    retry_after = RETRY_AFTER


class Timestamper:
    """Stamps signature values at one TSA; ``async with`` it (one per worker)."""

    def __init__(
        self,
        url: str,
        trust: TrustList,
        *,
        timeout: float = TSA_TIMEOUT,
        connections: int = TSA_CONNECTIONS,
    ) -> None:
        self._url = url
        self._trust = trust
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, headers={"Content-Type": QUERY_TYPE}
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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

    async def stamp(self, signatures: list[bytes]) -> list[bytes]:
        """For each signature value, in order, the ``[1] unsignedAttrs`` DER holding its
        verified timestamp token. The first failure cancels the rest and raises
        :class:`TsaUnavailable`."""
        if len(signatures) == 1:
            return [await self._stamp_one(signatures[0])]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._stamp_one(s)) for s in signatures]
        except* TsaUnavailable as failures:
            raise failures.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _stamp_one(self, signature: bytes) -> bytes:
        session = self._session
        if session is None:
            raise TsaUnavailable("the TSA client is not started")
        nonce = secrets.randbits(63) | 1
        try:
            async with session.post(self._url, data=timestamp_request(signature, nonce)) as answer:
                if answer.status != 200 or answer.content_type != REPLY_TYPE:
                    raise TsaUnavailable(
                        f"the TSA answered HTTP {answer.status} {answer.content_type}"
                    )
                body = await answer.content.read(MAX_RESPONSE + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TsaUnavailable(f"the TSA cannot be reached: {type(exc).__name__}") from exc
        if len(body) > MAX_RESPONSE:
            raise TsaUnavailable("the TSA's answer is too large")
        try:
            stamp = read_response(body, signature=signature, nonce=nonce, trust=self._trust)
        except TimestampRefused as exc:
            raise TsaUnavailable(str(exc)) from exc
        except BadTimestamp as exc:
            # Not a passing outage: a TSA whose tokens do not verify against tsa-roots.pem
            # (a new TSA certificate, a wrong URL) needs the operator.
            log.error("the TSA's token does not verify, sealing refused: %s", exc)
            raise TsaUnavailable(f"the TSA's token does not verify: {exc}") from exc
        return signature_timestamp_attributes(stamp.token_der)

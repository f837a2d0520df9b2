"""Retries: a 503 with Retry-After is waited out within a bound, and a sealing whose
answer was lost is sent again with its Idempotency-Key and returns the same proof."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from sealgate.client import AsyncClient, GatewayUnreachable, RetryPolicy, Status, Unavailable
from sealgate.gateway.app import create_app
from sealgate.gateway.audit import AUDIT_KEY_LABEL
from sealgate.hsm.errors import HsmUnavailable
from sealgate.hsm.service import ProcessSigningService, SigningService
from sealgate.verify.directory import Role
from tests.client.conftest import Served
from tests.client.proofs import proof
from tests.gateway.conftest import Demo


class FailingFirst(SigningService):
    """The real signing process, refusing its first ``failures`` sealings as an HSM
    outage would (the audit trail's checkpoints are signed as usual)."""

    def __init__(self, inner: SigningService, failures: int, retry_after: float) -> None:
        self.inner = inner
        self.failures = failures
        self.retry_after = retry_after
        self.refused = 0

    async def start(self) -> None:
        await self.inner.start()

    async def sign_digest(self, label: str, digest: bytes) -> bytes:
        if label != AUDIT_KEY_LABEL and self.refused < self.failures:
            self.refused += 1
            raise HsmUnavailable("injected: token away", retry_after=self.retry_after)
        return await self.inner.sign_digest(label, digest)

    async def check(self) -> None:
        await self.inner.check()

    async def close(self) -> None:
        await self.inner.close()


@contextlib.asynccontextmanager
async def gateway(demo: Demo, signing: SigningService) -> AsyncIterator[str]:
    """The gateway's application served on a real port, with ``signing`` in it."""
    server = TestServer(create_app(demo.settings, signing=signing), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_a_503_with_retry_after_is_retried(demo: Demo) -> None:
    signing = FailingFirst(ProcessSigningService(demo.settings.keystore_config()), 1, 1.0)
    async with (
        gateway(demo, signing) as url,
        AsyncClient(url, token=demo.token(Role.SIGNER)) as signer,
        AsyncClient(url, token=demo.token(Role.VERIFIER)) as bank,
    ):
        sealed = await signer.seal(proof(demo.proof_seal))
        assert signing.refused == 1  # the first send was refused 503, the second sealed
        assert (await bank.verify(sealed.code, purpose="demo")).status is Status.VALID


async def test_a_retry_after_beyond_the_bound_is_raised(demo: Demo) -> None:
    signing = FailingFirst(ProcessSigningService(demo.settings.keystore_config()), 5, 60.0)
    async with (
        gateway(demo, signing) as url,
        AsyncClient(url, token=demo.token(Role.SIGNER), retry=RetryPolicy(max_wait=5)) as signer,
    ):
        with pytest.raises(Unavailable) as refused:
            await signer.seal(proof(demo.proof_seal))
    assert refused.value.code == "hsm-unavailable" and refused.value.retry_after == 60
    assert signing.refused == 1  # not sent again


class LosingRelay:
    """A TCP relay to the gateway that cuts the first connection once the gateway's
    answer has arrived, before passing it on: the sealing is made, its answer lost."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.lost: list[bytes] = []  # the answers that never reached the client
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            if self.connections == 1:
                request = await _message(reader)
                upstream.write(request)
                self.lost.append(await _message(upstream_reader))
                return
            await asyncio.gather(_pump(reader, upstream), _pump(upstream_reader, writer))
        finally:
            upstream.close()
            writer.close()


async def _message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def losing_relay(served: Served) -> AsyncIterator[tuple[LosingRelay, str]]:
    """A :class:`LosingRelay` to the served gateway, and its URL."""
    relay = LosingRelay(int(served.url.rsplit(":", 1)[1]))
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    try:
        yield relay, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_lost_answer_is_retried_with_the_same_key_and_the_same_code(
    served: Served,
) -> None:
    async with (
        losing_relay(served) as (relay, url),
        AsyncClient(url, token=served.token(Role.SIGNER)) as signer,
    ):
        sealed = await signer.seal(proof(served.demo.proof_seal))
    [lost] = relay.lost
    assert lost.startswith(b"HTTP/1.1 201")
    first: dict[str, Any] = json.loads(lost.split(b"\r\n\r\n", 1)[1])
    assert sealed.code == first["code"]
    assert sealed.replayed  # the gateway answered from the first sealing, sealed nothing new
    assert sealed.document == base64.b64decode(first["document"])


async def test_a_status_change_is_not_resent_after_a_lost_answer(served: Served) -> None:
    """The change may have been made: the caller reads history() rather than repeat it."""
    async with AsyncClient(served.url, token=served.token(Role.SIGNER)) as signer:
        code = (await signer.seal(proof(served.demo.proof_seal))).code
    async with (
        losing_relay(served) as (relay, url),
        AsyncClient(url, token=served.token(Role.ISSUER)) as office,
    ):
        with pytest.raises(GatewayUnreachable):
            await office.change_status(code, Status.PLEDGED, reason="贷款质押")
        assert relay.connections == 1
        assert (await office.history(code)).status is Status.PLEDGED  # it was made


async def test_a_single_use_credential_is_not_resent_after_a_lost_answer(
    served: Served,
) -> None:
    """A holder assertion serves one request, and a consent's use is taken on arrival:
    a repeat would be refused, or spend another use. The read is not sent twice."""
    async with AsyncClient(served.url, token=served.token(Role.SIGNER)) as signer:
        code = (await signer.seal(proof(served.demo.proof_seal))).code
    async with (
        losing_relay(served) as (relay, url),
        AsyncClient(url, token=served.token(Role.PORTAL)) as portal,
    ):
        with pytest.raises(GatewayUnreachable):
            await portal.my_proofs(holder_assertion="a.holder.assertion")
        assert relay.connections == 1
    async with (
        losing_relay(served) as (relay, url),
        AsyncClient(url, token=served.token(Role.VERIFIER)) as bank,
    ):
        with pytest.raises(GatewayUnreachable):
            await bank.document(code, consent_token="a.consent.token")
        assert relay.connections == 1
    async with (
        losing_relay(served) as (relay, url),
        AsyncClient(url, token=served.token(Role.VERIFIER)) as bank,
    ):
        # without a consent the same read is sent again after the loss, and answered
        assert await bank.document(code, purpose="demo")
        assert relay.connections == 2 and len(relay.lost) == 1

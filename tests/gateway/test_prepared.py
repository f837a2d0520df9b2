"""Pre-serialised answers (``sealgate.gateway.prepared``): the bytes aiohttp would write, over a
real socket; HTTP/1.0 and ``Connection: close`` keep aiohttp's own response."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer, TestClient

from sealgate.gateway.dispatch import Dispatch
from sealgate.gateway.prepared import AnswerWriter
from sealgate.gateway.verifying import ANSWER_HEADERS
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo
from tests.gateway.test_authorization import sealed_code
from tests.gateway.test_dispatch import dispatch_of

Client = TestClient[Any, Any]
BODY = '{"code":"430900-CC5HGA-P3KPS7-NXX7EA","status":"valid","名":"王*"}'.encode()
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


async def exchange(host: str, port: int, request: bytes, *, until_closed: bool = False) -> bytes:
    """Writes ``request`` on a new connection; the bytes read until the server closes it
    (``until_closed``) or until it has been quiet for a moment."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        received = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 5.0 if until_closed else 0.5)
            except TimeoutError:
                assert not until_closed, "the server kept the connection open"
                return received
            if not chunk:
                return received
            received += chunk
    finally:
        writer.close()


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode()


@pytest.fixture
async def both_ways() -> AsyncIterator[tuple[str, int]]:
    """One server answering the same body and headers twice: ``/aiohttp`` with aiohttp's
    response, ``/prepared`` with a prepared answer when it fits."""
    writer = AnswerWriter(ANSWER_HEADERS)

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/prepared" and writer.fits(request):
            return writer.answer(BODY, "rid-1")
        return web.Response(body=BODY, headers={**ANSWER_HEADERS, "X-Request-Id": "rid-1"})

    server = RawTestServer(handler)
    await server.start_server()
    try:
        yield server.host, server.port
    finally:
        await server.close()


async def test_the_message_is_aiohttps_own_byte_for_byte(both_ways: tuple[str, int]) -> None:
    host, port = both_ways
    by_aiohttp = await exchange(host, port, get("/aiohttp"))
    prepared = await exchange(host, port, get("/prepared"))
    assert prepared.startswith(b"HTTP/1.1 200 OK\r\n") and prepared.endswith(BODY)
    # the Date line aside (the two were answered in different seconds, maybe), identical
    assert _DATE.sub(b"\r\nDate: -\r\n", prepared) == _DATE.sub(b"\r\nDate: -\r\n", by_aiohttp)
    assert f"Content-Length: {len(BODY)}\r\n".encode() in prepared


async def test_pipelined_requests_are_answered_in_order_on_a_kept_connection(
    both_ways: tuple[str, int],
) -> None:
    host, port = both_ways
    received = await exchange(host, port, get("/prepared") * 3)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert received.count(BODY) == 3
    assert b"Connection: close" not in received


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (get("/prepared", version="1.0"), b"HTTP/1.0 200 OK\r\n"),
        (get("/prepared", "Connection: close"), b"HTTP/1.1 200 OK\r\n"),
    ],
)
async def test_a_connection_that_ends_gets_aiohttps_answer_and_is_closed(
    both_ways: tuple[str, int], request_bytes: bytes, status_line: bytes
) -> None:
    host, port = both_ways
    by_prepared_route = await exchange(host, port, request_bytes, until_closed=True)
    by_aiohttp = await exchange(host, port, request_bytes.replace(b"/prepared", b"/aiohttp"),
                                until_closed=True)  # fmt: skip
    assert by_prepared_route.startswith(status_line) and by_prepared_route.endswith(BODY)
    assert _DATE.sub(b"-", by_prepared_route) == _DATE.sub(b"-", by_aiohttp)


def test_the_date_is_formatted_once_a_second_as_http_wants_it() -> None:
    now = [1796285293.2]  # 2026-12-03T08:08:13Z
    writer = AnswerWriter(ANSWER_HEADERS, clock=lambda: now[0])
    first = writer.answer(b"{}", "a")
    now[0] += 0.5
    same_second = writer.answer(b"{}", "b")
    now[0] += 1
    next_second = writer.answer(b"{}", "c")
    dates = [_DATE.search(a._message).group() for a in (first, same_second, next_second)]  # type: ignore[union-attr]
    assert dates[0] == dates[1] == b"\r\nDate: Thu, 03 Dec 2026 08:08:13 GMT\r\n"
    assert dates[2] == b"\r\nDate: Thu, 03 Dec 2026 08:08:14 GMT\r\n"
    assert first.headers["X-Request-Id"] == "a" and first.status == 200


@pytest.mark.parametrize("request_id", ["a\r\nSet-Cookie: x=1", "with space", "", "é"])
def test_a_request_id_that_could_split_the_message_is_refused(request_id: str) -> None:
    with pytest.raises(ValueError, match="token"):
        AnswerWriter(ANSWER_HEADERS).answer(b"{}", request_id)


@pytest.mark.parametrize(
    "headers", [{"X-A": "b\r\nSet-Cookie: x=1"}, {"X A": "b"}, {"X-A": "\n"}, {"": "b"}]
)
def test_fixed_headers_that_could_split_the_message_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        AnswerWriter(headers)


async def test_the_gateway_answers_remembered_verifications_with_prepared_answers(
    api: Client, demo: Demo
) -> None:
    code = await sealed_code(api, demo)
    dispatch = dispatch_of(api)
    assert isinstance(dispatch, Dispatch)
    token = demo.auth(Role.VERIFIER)["Authorization"]
    path = f"/v1/verify/{code}?purpose=demo"

    async def ask(request: bytes) -> bytes:
        return await exchange(api.server.host, api.server.port, request)

    first = await ask(get(path, f"Authorization: {token}", "X-Request-Id: by-the-app"))
    answered = dispatch.answered
    kept = await ask(
        get(path, f"Authorization: {token}", "X-Request-Id: prepared-1")
        + get(path, f"Authorization: {token}", "X-Request-Id: prepared-2")
    )
    assert dispatch.answered == answered + 2
    closing = await exchange(
        api.server.host,
        api.server.port,
        get(path, f"Authorization: {token}", "X-Request-Id: by-aiohttp", version="1.0"),
        until_closed=True,
    )
    assert dispatch.answered == answered + 3

    def without_volatile(message: bytes) -> bytes:
        message = _DATE.sub(b"\r\nDate: -\r\n", message)
        message = re.sub(rb"X-Request-Id: [^\r]*", b"X-Request-Id: -", message)
        return re.sub(rb'"checked_at":"[^"]*"', b'"checked_at":"-"', message)

    responses = kept.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 2
    # each its own id, the gateway's (the ids sent are kept only hashed, in the trail)
    ids = [i for r in responses for i in re.findall(rb"X-Request-Id: ([^\r]*)", r)]
    assert len(set(ids)) == 2 and not {b"prepared-1", b"prepared-2"} & set(ids)
    # the prepared answers say what the application said, and aiohttp for HTTP/1.0
    assert {without_volatile(b"HTTP/1.1 " + r) for r in responses} == {without_volatile(first)}
    assert without_volatile(closing) == without_volatile(first).replace(b"HTTP/1.1", b"HTTP/1.0")

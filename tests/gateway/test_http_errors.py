"""Every refusal is problem+json: aiohttp's own 400s before routing, and 405s with Allow.

Against `sealgate serve` itself, over raw sockets: these requests are bytes no HTTP client
library will send.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import Demo
from tests.gateway.serving import free_port, serving


@pytest.fixture(scope="module")
def port(demo: Demo) -> Iterator[int]:
    port = free_port()
    with serving(demo.home, port):
        yield port


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a fresh connection; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):  # every answer here closes the connection
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


MALFORMED = {
    "bytes beyond ASCII in the query": b"GET /v1/proofs?purpose=\xff\xfe HTTP/1.1\r\n",
    "a control character in the query": b"GET /v1/verify/X?purpose=\x01 HTTP/1.1\r\n",
    "a control character in a header": b"GET /healthz HTTP/1.1\r\nX-Note: a\x01b\r\n",
    "a request line that is not HTTP": b"GARBAGE\r\n",
    "a space inside the target": b"GET /v1/ver ify HTTP/1.1\r\n",
    "an unknown HTTP version": b"GET /healthz HTTP/9.9\r\n",
    "a Content-Length that is no number": (
        b"POST /v1/certificates HTTP/1.1\r\nContent-Length: x\r\n"
    ),
    "a header longer than the limit": b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_requests_aiohttp_refuses_get_a_problem(port: int, raw: bytes) -> None:
    status, headers, body = exchange(port, raw + b"Host: x\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert headers["cache-control"] == "no-store"
    problem = json.loads(body)
    assert problem["request_id"] == headers["x-request-id"]  # as every other answer has
    assert problem["status"] == 400
    assert problem["code"] == "bad-request"
    assert problem["type"] == "urn:sealgate:problem:bad-request"


def test_a_refused_request_is_not_quoted_back(port: int) -> None:
    """aiohttp's message quotes the bytes it refused (a header holding a token, perhaps)."""
    secret = b"sgt_" + b"s" * 9000
    status, _, body = exchange(
        port, b"GET /healthz HTTP/1.1\r\nAuthorization: " + secret + b"\r\n\r\n"
    )
    assert status == 400
    assert b"sss" not in body
    assert json.loads(body)["detail"] == "Got more than 8190 bytes when reading"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/healthz", {"GET", "HEAD"}),
        ("PUT", "/v1/certificates", {"POST"}),
        ("GET", "/v1/certificates", {"POST"}),
        ("PATCH", "/v1/certificates/430900-7K3M9Q-ZX4T2B-H8WDQG/status", {"GET", "HEAD", "POST"}),
        ("POST", "/v1/verify/430900-7K3M9Q-ZX4T2B-H8WDQG", {"GET", "HEAD"}),
        ("OPTIONS", "/openapi.json", {"GET", "HEAD"}),
        ("TRACE", "/v1/trust", {"GET", "HEAD"}),
    ],
)
def test_a_405_names_the_allowed_methods(
    port: int, method: str, path: str, allowed: set[str]
) -> None:
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = exchange(port, request.encode())
    assert status == 405
    assert {m.strip() for m in headers["allow"].split(",")} == allowed  # RFC 9110 §15.5.6
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "method-not-allowed"


def test_an_unknown_expectation_gets_a_problem(port: int) -> None:
    """aiohttp checks `Expect` before any middleware, and answered text/plain."""
    request = (
        b"POST /v1/certificates HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n"
    )
    status, headers, body = exchange(port, request + b"Content-Length: 2\r\n\r\n{}")
    assert status == 417
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "expectation-failed"
    assert problem["request_id"] == headers["x-request-id"]
    assert "200-ok" not in body.decode()

"""Hostile or broken input, and a failing HSM: clear 4xx/503 answers, never a 500, nothing
stored, nothing secret logged. (Regressions found in review.)"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

import sealgate.gateway.handlers.common
from sealgate.gateway.app import create_app
from sealgate.gateway.auth import Authenticator
from sealgate.gateway.keys import SIGNING
from sealgate.gateway.problems import Problem
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.scraped import samples
from tests.gateway.serving import free_port, serving
from tests.gateway.test_authorization import count
from tests.waiting import eventually

HOLDER_ID = "430902199001011231"


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"content": {"id": 430902199001011231}}', "2**53"),
        (b'{"content": {"x": 1e400}}', "out of range"),
        (b'{"content": {"x": ' + b"9" * 5000 + b"}}", "2**53"),
        (b'{"content": {"x": "\\ud800"}}', "canonicalizable"),
        (b'{"content": {"\\ud800": 1}}', "canonicalizable"),
        (b'{"content": {"\\udfff": 1, "y": 1.5}}', "canonicalizable"),
    ],
)
async def test_numbers_and_surrogates_are_400_and_never_logged(
    api: TestClient[Any, Any],
    demo: Demo,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
    detail: str,
) -> None:
    body = proof_request(demo.proof_seal)
    del body["content"]
    import json

    prefix = json.dumps(body, ensure_ascii=False)[:-1].encode() + b", "
    payload = prefix + raw[1:]
    before = await count(demo)
    with caplog.at_level(logging.DEBUG):
        for headers in ({}, {"Idempotency-Key": "hostile-1"}):
            response = await api.post(
                "/v1/certificates",
                data=payload,
                headers={**demo.auth(Role.SIGNER), "Content-Type": "application/json", **headers},
            )
            assert response.status == 400, await response.text()
            problem = await response.json()
            assert detail in problem["detail"]
    assert HOLDER_ID not in caplog.text
    assert await count(demo) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("valid_until", "9999-12-31"),
        ("valid_from", "0001-01-01T00:00:00+14:00"),
        ("valid_from", "2026-11-22T10:00"),
        ("holder", {"kind": "person", "id": "11010519491231002X", "name": "\ud800"}),
        # born on the 13th month, its check character right
        ("holder", {"kind": "person", "id": "430902199013010017", "name": "张三"}),
    ],
)
async def test_odd_dates_and_names_are_400(
    api: TestClient[Any, Any], demo: Demo, field: str, value: Any
) -> None:
    response = await api.post(
        "/v1/certificates",
        json=proof_request(demo.proof_seal, **{field: value}),
        headers=demo.auth(Role.SIGNER),
    )
    assert response.status == 400
    assert (await response.json())["field"].startswith(field)


async def test_non_ascii_headers(api: TestClient[Any, Any], demo: Demo) -> None:
    response = await api.get(
        "/v1/verify/X?purpose=demo", headers={"Authorization": "Bearer \u00ff\u00fe"}
    )
    assert response.status == 401
    response = await api.get("/nope", headers={"X-Request-Id": "\u00ff\u00fe"})
    assert response.status == 404
    assert response.headers["X-Request-Id"] != "\u00ff\u00fe"
    response = await api.get("/nope", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] not in ("", "trace-42")  # always the gateway's


async def test_codes_with_slashes_get_the_same_404(api: TestClient[Any, Any], demo: Demo) -> None:
    response = await api.get(
        "/v1/verify/430900/ZDXE31?purpose=demo", headers=demo.auth(Role.VERIFIER)
    )
    assert response.status == 404
    assert (await response.json())["code"] == "unknown-code"


@pytest.mark.processes
async def test_an_upload_cut_off_is_a_4xx_without_a_traceback(demo: Demo) -> None:
    """A signer's connection drops mid-body: nothing sealed, no 500. Against `sealgate
    serve` itself: aiohttp's test server cancels a handler whose client left, which the
    real server does not."""
    before = await count(demo)
    token = demo.auth(Role.SIGNER)["Authorization"]
    port = free_port()
    with serving(demo.home, port):
        for _ in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /v1/certificates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nAuthorization: " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
                b'{"seal_id": "'
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await writer.wait_closed()
        async with aiohttp.ClientSession() as session:

            async def all_three_answered() -> dict[str, float]:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                by_status = {
                    dict(labels)["status"]: count
                    for (name, labels), count in samples(text).items()
                    if name == "sealgate_requests_total" and ("route", "/v1/certificates") in labels
                }
                return by_status if sum(by_status.values()) >= 3 else {}

            seals = await eventually(all_three_answered, timeout=10, what="3 answers")
    assert await count(demo) == before
    assert seals.get("400", 0) >= 1, seals
    assert "500" not in seals, seals


async def test_a_body_that_never_arrives_whole_is_408(
    api: TestClient[Any, Any], demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sealgate.gateway.handlers.common, "BODY_SECONDS", 0.5)
    before = await count(demo)
    token = demo.auth(Role.SIGNER)["Authorization"]
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    try:
        writer.write(
            b"POST /v1/certificates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nAuthorization: " + token.encode() + b"\r\nContent-Length: 4000000\r\n\r\n"
            b'{"seal_id": "'
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    assert await count(demo) == before


@pytest.mark.processes
def test_a_worker_takes_the_hard_limit_on_open_files() -> None:
    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "from sealgate.gateway.server import raise_file_limit\n"
        "raise_file_limit()\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == out[1], out


async def test_a_refused_token_does_not_keep_its_traceback(demo: Demo) -> None:
    from sealgate.verify.sqlite import SqliteDirectory

    directory = SqliteDirectory(demo.settings.sqlite_path)
    auth = Authenticator(directory)

    class Fake:
        headers: ClassVar[CIMultiDict[str]] = CIMultiDict({"Authorization": "Bearer nope"})

    errors = []
    for _ in range(50):
        try:
            await auth.client(Fake())  # type: ignore[arg-type]
        except Problem as exc:
            errors.append(exc)
    directory.close()
    assert len({id(e) for e in errors}) == 50
    depth = 0
    tb = errors[-1].__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    assert depth < 5


async def test_oversized_document_is_413_even_when_chunked(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"\x30" * 65536

    response = await api.post(
        "/v1/verify/document?purpose=demo", data=chunks(), headers=demo.auth(Role.VERIFIER)
    )
    assert response.status == 413


async def test_a_lost_signing_process_is_503_with_retry_after_then_recovers(
    demo: Demo, gateway_client: Any
) -> None:
    app = create_app(demo.settings)
    api: TestClient[Any, Any] = await gateway_client(app)
    signer = demo.auth(Role.SIGNER)

    async def seal(n: int) -> tuple[int, str | None]:
        r = await api.post(
            "/v1/certificates",
            json=proof_request(demo.proof_seal, content={"n": n}),
            headers=signer,
        )
        return r.status, r.headers.get("Retry-After")

    assert (await seal(0))[0] == 201
    pid = app[SIGNING].pid  # type: ignore[attr-defined]
    assert pid is not None
    load = [asyncio.create_task(seal(n)) for n in range(1, 300)]
    await asyncio.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    results = await asyncio.gather(*load)
    statuses = {status for status, _ in results}
    assert statuses <= {201, 503}, statuses
    assert all(retry is not None and int(retry) >= 1 for status, retry in results if status == 503)
    # verification is unaffected, and sealing recovers without a restart
    r = await api.get("/healthz")
    assert r.status == 200

    async def sealed() -> bool:
        return (await seal(1000))[0] == 201

    await eventually(sealed, timeout=10, interval=0.1, what="sealing again")
    assert app[SIGNING].pid not in (None, pid)  # type: ignore[attr-defined]


async def test_gateway_serves_verification_when_the_token_cannot_be_opened(
    api: TestClient[Any, Any],
    demo: Demo,
    gateway_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    code = (await response.json())["code"]
    monkeypatch.setenv("SEALGATE_PKCS11_PIN", "wrong-pin")
    broken: TestClient[Any, Any] = await gateway_client(create_app(demo.settings))
    response = await broken.get(f"/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert response.status == 200
    response = await broken.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    assert response.status == 503
    assert "Retry-After" in response.headers
    ready = await broken.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["hsm"].startswith("unavailable")


async def test_a_padded_authorization_header_is_refused_before_the_cache(demo: Demo) -> None:
    from sealgate.verify.sqlite import SqliteDirectory

    directory = SqliteDirectory(demo.settings.sqlite_path)
    auth = Authenticator(directory)
    padded = "Bearer " + " " * 8000 + demo.token(Role.VERIFIER)

    class Fake:
        headers: ClassVar[CIMultiDict[str]] = CIMultiDict({"Authorization": padded})

    try:
        with pytest.raises(Problem) as refused:
            await auth.client(Fake())  # type: ignore[arg-type]
        assert refused.value.status == 401
        assert auth._cache == {}  # nothing of it kept
    finally:
        directory.close()

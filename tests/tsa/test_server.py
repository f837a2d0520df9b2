"""`sealgate tsa serve`: a real RFC 3161 TSA process, checked with OpenSSL's `ts` and
pkcs11-tool (the key in its own token; the root key that certified it gone)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from sealgate.bench.tsa_server import TsaServer
from sealgate.crypto.timestamps import read_response, timestamp_request
from sealgate.crypto.verification import TrustList
from sealgate.hsm.softhsm import SOFTHSM2_MODULE

QUERY = {"Content-Type": "application/timestamp-query"}


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, cwd=cwd)


async def post(url: str, body: bytes, headers: dict[str, str] = QUERY) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as answer,
    ):
        return answer.status, answer.content_type, await answer.read()


async def test_openssl_ts_verifies_the_tokens_against_the_tsa_root(
    tsa_server: TsaServer, tmp_path: Path
) -> None:
    (tmp_path / "data").write_bytes(b"a seal's signature value")
    query = openssl(
        "ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "q.tsq", cwd=tmp_path
    )
    assert query.returncode == 0, query.stderr
    status, content_type, reply = await post(tsa_server.url, (tmp_path / "q.tsq").read_bytes())
    assert (status, content_type) == (200, "application/timestamp-reply")
    (tmp_path / "r.tsr").write_bytes(reply)
    root = str(tsa_server.root_path)
    for check in (["-queryfile", "q.tsq"], ["-data", "data"]):
        verified = openssl("ts", "-verify", "-in", "r.tsr", *check, "-CAfile", root, cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert "Verification: OK" in verified.stdout
    text = openssl("ts", "-reply", "-in", "r.tsr", "-text", cwd=tmp_path).stdout
    assert "Status: Granted." in text
    assert "Policy OID: 2.999.3161.1" in text
    # Other data is refused: the token is bound to its imprint.
    (tmp_path / "other").write_bytes(b"another signature value")
    refused = openssl(
        "ts", "-verify", "-in", "r.tsr", "-data", "other", "-CAfile", root, cwd=tmp_path
    )
    assert refused.returncode != 0


async def test_concurrent_requests_each_get_their_own_token(tsa_server: TsaServer) -> None:
    trust = TrustList.from_pem(tsa_server.root_path.read_bytes())
    signatures = [f"signature {n}".encode() for n in range(50)]
    answers = await asyncio.gather(
        *(post(tsa_server.url, timestamp_request(s, n + 1)) for n, s in enumerate(signatures))
    )
    stamps = [
        read_response(body, signature=s, nonce=n + 1, trust=trust)
        for n, (s, (_, _, body)) in enumerate(zip(signatures, answers, strict=True))
    ]
    assert len({stamp.serial for stamp in stamps}) == 50
    assert {stamp.tsa_name for stamp in stamps} == {"sealgate development TSA"}


async def test_what_is_not_a_request_is_refused_in_the_protocol(
    tsa_server: TsaServer, tmp_path: Path
) -> None:
    status, content_type, reply = await post(tsa_server.url, b"not a TimeStampReq")
    assert (status, content_type) == (200, "application/timestamp-reply")
    (tmp_path / "bad.tsr").write_bytes(reply)
    text = openssl("ts", "-reply", "-in", "bad.tsr", "-text", cwd=tmp_path).stdout
    assert "Status: Rejected." in text
    assert "the data submitted has the wrong format" in text
    status, _, _ = await post(tsa_server.url, b"x", headers={"Content-Type": "text/plain"})
    assert status == 415


def test_the_token_holds_only_the_tsa_key_and_a_restart_keeps_it(tmp_path: Path) -> None:
    server = TsaServer(tmp_path / "tsa")
    with server:
        first = (server.directory / "tsa.pem").read_bytes()
    pin = (server.directory / "secrets" / "token-pin").read_text()
    listed = subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            SOFTHSM2_MODULE,
            "--token-label",
            "sealgate-tsa",
            "--login",
            "--pin",
            pin,
            "--list-objects",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"SOFTHSM2_CONF": str(server.directory / "softhsm" / "softhsm2.conf")},
    ).stdout
    labels = {line.split(":", 1)[1].strip() for line in listed.splitlines() if "label:" in line}
    assert labels == {"sealgate-tsa-1"}  # the root key signed the certificate and went
    assert not (server.directory / "secrets" / "so-pin").exists()
    with server:
        assert (server.directory / "tsa.pem").read_bytes() == first


def test_an_interrupted_first_start_is_refused_not_repaired(tmp_path: Path) -> None:
    home = tmp_path / "tsa"
    (home / "softhsm").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "sealgate.gateway.cli", "tsa", "serve", "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "interrupted" in result.stderr


pytestmark = pytest.mark.processes

"""The examples in examples/, run as their docstrings say, against a real gateway."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealgate.client import Client, Status
from sealgate.verify.directory import Role
from tests.client.conftest import Served, served  # noqa: F401 - the fixture, shared
from tests.client.proofs import proof
from tests.gateway.conftest import demo  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.processes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(example: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / example), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_a_bank_checks_a_code_and_matches_the_holder(served: Served) -> None:  # noqa: F811
    with Client(served.url, token=served.token(Role.SIGNER)) as signer:
        code = signer.seal(proof(served.demo.proof_seal)).code
    token = {"SEALGATE_TOKEN": served.token(Role.VERIFIER)}
    url = ("--url", served.url)
    typed = code.lower().replace("-", " ")
    ok = run(
        "bank_check.py", typed, "11010519491231002x", "张三", "--purpose", "demo", *url, **token
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK: valid, and the holder matches" in ok.stdout
    assert "11010519491231002X" not in ok.stdout.upper()  # masked forms only
    other = run("bank_check.py", code, "110105194912310038", "张三", "--purpose", "demo", *url,
                **token)  # fmt: skip
    assert other.returncode == 1 and "does not match" in other.stdout
    typo = code[:-1] + ("1" if code[-1] != "1" else "2")
    mistyped = run("bank_check.py", typo, "11010519491231002X", "张三", "--purpose", "demo",
                   *url, **token)  # fmt: skip
    assert mistyped.returncode == 2 and "mistyped" in mistyped.stdout


def test_an_office_seals_a_batch_and_revokes_one(served: Served) -> None:  # noqa: F811
    done = run(
        "office_batch.py",
        served.demo.proof_seal,
        "--url",
        served.url,
        SEALGATE_SIGNER_TOKEN=served.token(Role.SIGNER),
        SEALGATE_ISSUER_TOKEN=served.token(Role.ISSUER),
    )
    assert done.returncode == 0, done.stderr
    sealed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("sealed")]
    assert len(sealed) == 3
    with Client(served.url, token=served.token(Role.VERIFIER)) as bank:
        statuses = [bank.verify(code, purpose="demo").status for code in sealed]
    assert statuses == [Status.REVOKED, Status.VALID, Status.VALID]


def test_an_operator_reads_readiness_and_metrics(served: Served) -> None:  # noqa: F811
    with Client(served.url, token=served.token(Role.VERIFIER)) as bank:
        bank.health()
    done = run("operator_metrics.py", "--url", served.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ready"
    assert any(line.split()[1:] == ["200", "/healthz"] for line in lines if line.startswith(" "))

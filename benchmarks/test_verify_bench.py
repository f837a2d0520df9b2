"""Verification: a sealed proof's CMS check, a code's syntax + keyed tag check, and the
encoding of a status answer (built per request vs remembered)."""

from __future__ import annotations

import json

from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import SealingKit
from sealgate.crypto.verification import verify_proof
from sealgate.gateway.checking import status_view
from sealgate.gateway.verifying import StatusAnswers
from sealgate.verify.code import CodeAuthority
from tests.cache.samples import BASE


def test_verify_sealed_proof(benchmark: BenchmarkFixture, kit: SealingKit) -> None:
    proof = kit.seal()
    result = benchmark(verify_proof, proof, kit.trust)
    assert result.seal_id == kit.key.seal_id


def test_code_check(benchmark: BenchmarkFixture) -> None:
    authority = CodeAuthority(b"k" * 32, "430900")
    code = str(authority.issue())
    assert benchmark(authority.check, code.lower()).compact == code.replace("-", "")


def test_status_answer_built(benchmark: BenchmarkFixture) -> None:
    """Response encoding the plain way: the view as a dict, then json.dumps."""
    now = BASE.issued_at + 60
    body = benchmark(lambda: json.dumps(status_view(BASE, now), ensure_ascii=False).encode())
    assert json.loads(body)["status"] == "valid"


def test_status_answer_remembered(benchmark: BenchmarkFixture) -> None:
    """Response encoding on the verify route: the remembered prefix plus ``checked_at``."""
    answers = StatusAnswers()
    now = BASE.issued_at + 60
    body = benchmark(answers.body, BASE, now)
    assert json.loads(body) == status_view(BASE, now)

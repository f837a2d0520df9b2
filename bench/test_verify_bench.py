"""Verification: a sealed proof's CMS check, and a code's syntax + keyed tag check."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from bench.conftest import SealingKit
from crypto.verification import verify_proof
from verify.code import CodeAuthority


def test_verify_sealed_proof(benchmark: BenchmarkFixture, kit: SealingKit) -> None:
    proof = kit.seal()
    result = benchmark(verify_proof, proof, kit.trust)
    assert result.seal_id == kit.key.seal_id


def test_code_check(benchmark: BenchmarkFixture) -> None:
    authority = CodeAuthority(b"k" * 32, "430900")
    code = str(authority.issue())
    assert benchmark(authority.check, code.lower()).compact == code.replace("-", "")

"""CMS build and verify without an HSM (software test signers); ``make bench`` runs them."""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from sealgate.crypto import TrustList, verify_proof
from tests.crypto.signers import CONTENT, ENDORSEMENT, NOW, SEAL_ID, Pki


def test_bench_prepare_finish(benchmark: BenchmarkFixture, any_pki: Pki) -> None:
    """Sealing cost without the HSM: the signature is computed once, up front."""
    sealer = any_pki.sealer()

    def seal() -> bytes:
        pending = sealer.prepare(
            CONTENT, code="NB-1", seal_id=SEAL_ID, signing_time=NOW, endorsement=ENDORSEMENT
        )
        return pending.finish(signature)

    first = sealer.prepare(
        CONTENT, code="NB-1", seal_id=SEAL_ID, signing_time=NOW, endorsement=ENDORSEMENT
    )
    signature = any_pki.seal_signer.sign(first.digest)
    assert benchmark(seal) == first.finish(signature)


def test_bench_verify(benchmark: BenchmarkFixture, any_pki: Pki) -> None:
    proof = any_pki.proof()
    trust = TrustList.from_der([any_pki.root])
    assert benchmark(verify_proof, proof, trust).content == CONTENT

"""Sealing: the raw PKCS#11 sign (the floor), and sealing a proof (HSM sign + CMS build).

Read ``test_seal_proof`` and ``test_signing_process_burst`` as ratios to
``test_floor_raw_pkcs11_sign`` of the same run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.conftest import SealingKit
from sealgate.crypto.verification import verify_proof
from sealgate.hsm.service import ProcessSigningService

DIGEST = hashlib.sha256(b"sealgate").digest()
BURST = 1000


def test_floor_raw_pkcs11_sign(benchmark: BenchmarkFixture, kit: SealingKit) -> None:
    """python-pkcs11 alone: CKM_ECDSA over a digest, on a session of its own."""
    config = kit.settings.keystore_config()
    os.environ["SOFTHSM2_CONF"] = config.softhsm2_conf
    token = pkcs11.lib(config.module).get_token(token_label=config.token_label)
    # The kit's keystore has logged this process in already (PKCS#11 login is per
    # application), so a second session needs no PIN.
    with token.open() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=kit.key.key_label)
        signature = benchmark(key.sign, DIGEST, mechanism=Mechanism.ECDSA)
        assert len(signature) == 64
        assert key[Attribute.SENSITIVE]


def test_seal_proof(benchmark: BenchmarkFixture, kit: SealingKit) -> None:
    """One proof: signed attributes, HSM signature (in-process keystore), CMS assembled."""
    proof = benchmark(kit.seal)
    assert verify_proof(proof, kit.trust).seal_id == kit.key.seal_id


def test_signing_process_burst(benchmark: BenchmarkFixture, kit: SealingKit) -> None:
    """The serving path's signer: 1,000 concurrent digests through the signing process.

    One round is one burst; divide by 1,000 for the time per signature.
    """

    async def burst(service: ProcessSigningService) -> list[bytes]:
        return await asyncio.gather(
            *(service.sign_digest(kit.key.key_label, DIGEST) for _ in range(BURST))
        )

    async def run() -> None:
        async with ProcessSigningService(kit.settings.keystore_config()) as service:
            loop = asyncio.get_running_loop()
            await burst(service)  # warm: child started, key handle cached
            results = await loop.run_in_executor(
                None,
                lambda: benchmark.pedantic(
                    lambda: asyncio.run_coroutine_threadsafe(burst(service), loop).result(),
                    rounds=10,
                ),
            )
            assert len(results) == BURST

    asyncio.run(run())

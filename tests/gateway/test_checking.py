"""A guessed code is refused before any lookup; a real one is found."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.cache.local import LocalTier
from sealgate.cache.lookup import CachedLookup, Found
from sealgate.gateway.catalog import SealCatalog
from sealgate.gateway.checking import StatusChecker
from sealgate.gateway.problems import Problem
from sealgate.verify.code import CROCKFORD_ALPHABET, CodeAuthority
from sealgate.verify.directory import Role
from sealgate.verify.registry import ProofRecord, ProofStatus
from sealgate.verify.sqlite import SqliteDirectory, SqliteRegistry
from tests.gateway.conftest import Demo, proof_request

ISO = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


# ISO/IEC 7064 MOD 37-2, computed independently of sealgate.verify.code: the check character c of
# payload a_1..a_23 makes sum(a_i * 2^(24-i)) + c = 1 (mod 37).
WEIGHTS = [
    [ISO.index(chr(b)) * pow(2, 23 - i, 37) % 37 if chr(b) in ISO else 0 for b in range(256)]
    for i in range(23)
]
DIGITS = bytes(ord("0123456789"[b % 10]) for b in range(256))
SYMBOLS = bytes(ord(CROCKFORD_ALPHABET[b % 32]) for b in range(256))


def random_codes(count: int, seed: int) -> list[str]:
    """Random codes of the right shape, with a correct check character."""
    rng = random.Random(seed)
    codes: list[str] = []
    while len(codes) < count:
        payload = rng.randbytes(6).translate(DIGITS) + rng.randbytes(17).translate(SYMBOLS)
        total = sum(row[b] for row, b in zip(WEIGHTS, payload, strict=True)) % 37
        check = ISO[(1 - total) % 37]
        if check in CROCKFORD_ALPHABET:
            codes.append(payload.decode() + check)
    return codes


class CountingRegistry(SqliteRegistry):
    """The real registry, counting every read of a proof."""

    lookups = 0

    async def get(self, code: str) -> ProofRecord | None:
        self.lookups += 1
        return await super().get(code)

    async def get_status(self, code: str) -> ProofStatus | None:
        self.lookups += 1
        return await super().get_status(code)


class CountingLookup(CachedLookup):
    """The real cache tiers in front of it, counting every lookup they are asked for
    (``get_status`` is ``find`` without the freshness, so counting ``find`` counts both)."""

    lookups = 0

    async def find(self, code: str) -> Found:
        self.lookups += 1
        return await super().find(code)


@pytest.mark.slow
async def test_a_million_random_codes_are_refused_without_a_lookup(demo: Demo) -> None:
    registry = CountingRegistry(demo.settings.sqlite_path, demo.settings.document_cipher())
    directory = SqliteDirectory(demo.settings.sqlite_path)
    lookup = CountingLookup(registry, LocalTier())
    codes = CodeAuthority(demo.settings.read_secret("code-key"), demo.settings.region)
    checker = StatusChecker(
        codes=codes, lookup=lookup, registry=registry, catalog=SealCatalog(directory)
    )
    refused = 0
    for text in random_codes(1_000_000, seed=20261122):
        try:
            await checker.status(text)
        except Problem as problem:
            assert problem.status == 404
            refused += 1
    assert refused == 1_000_000
    assert lookup.lookups == 0
    assert registry.lookups == 0

    # while a genuine code issued under the home's key does reach the registry
    genuine = codes.issue()
    with contextlib.suppress(Problem):  # issued but never registered: 404 after a lookup
        await checker.status(str(genuine))
    assert lookup.lookups == 1
    assert registry.lookups == 1
    await registry.close()
    directory.close()


async def test_unknown_and_malformed_codes_look_the_same(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    response = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    real = (await response.json())["code"]
    codes = CodeAuthority(demo.settings.read_secret("code-key"), demo.settings.region)
    candidates = [
        "garbage",
        "%00%ff",
        real[:-1] + ("0" if real[-1] != "0" else "1"),  # typo: check character fails
        random_codes(1, seed=7)[0],  # right shape, forged
        str(codes.issue()),  # genuine tag, never registered
        "4" * 60,
    ]
    bodies = set()
    for text in candidates:
        r = await api.get(f"/v1/verify/{text}?purpose=demo", headers=demo.auth(Role.VERIFIER))
        assert r.status == 404, text
        problem = await r.json()
        problem.pop("request_id")
        bodies.add(tuple(sorted(problem.items())))
        assert r.headers["Content-Type"].startswith("application/problem+json")
    assert len(bodies) == 1

    # the real code, typed in lower case with O for 0 and without hyphens, is found
    typed = real.replace("-", "").lower().replace("0", "o").replace("1", "l")
    r = await api.get(f"/v1/verify/{typed}?purpose=demo", headers=demo.auth(Role.VERIFIER))
    assert r.status == 200
    assert (await r.json())["code"] == real

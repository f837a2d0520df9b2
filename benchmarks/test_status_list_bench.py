"""A status list of 1,000,000 proofs: build it, compress it, apply 1,000 changes.

The mix is a city's after some years (97 % valid, 1 % pledged, 1.5 % revoked or ended,
0.5 % changed), scattered at random: the worst case for the compression, since issue
order does not group the statuses. The figures go in docs/design.md §13.
"""

from __future__ import annotations

import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from sealgate.crypto.status_list import StatusBits
from sealgate.gateway.status_lists import LIST_CAPACITY, LIST_VALUES
from sealgate.verify.registry import Status

PROOFS = 1_000_000
CHANGES = 1_000
MIX = [
    (Status.VALID, 0.97),
    (Status.PLEDGED, 0.01),
    (Status.REVOKED, 0.015),
    (Status.CHANGED, 0.005),
]


def population(seed: int = 27) -> list[tuple[int, Status]]:
    rng = random.Random(seed)
    statuses, weights = zip(*MIX, strict=True)
    drawn = rng.choices(statuses, weights, k=PROOFS)
    return list(enumerate(drawn, start=1))


def build(slots: list[tuple[int, Status]]) -> tuple[StatusBits, bytes]:
    bits = StatusBits(bytes(LIST_CAPACITY // 4))
    for index, status in slots:
        bits.set(index, LIST_VALUES[status])
    return bits, bits.compressed()


@pytest.fixture(scope="module")
def slots() -> list[tuple[int, Status]]:
    return population()


def test_build_a_million(benchmark: BenchmarkFixture, slots: list[tuple[int, Status]]) -> None:
    _, compressed = benchmark.pedantic(build, args=(slots,), rounds=3, iterations=1)
    benchmark.extra_info["compressed_bytes"] = len(compressed)


def test_apply_a_thousand_changes(
    benchmark: BenchmarkFixture, slots: list[tuple[int, Status]]
) -> None:
    bits, _ = build(slots)
    rng = random.Random(7)
    changes = [(rng.randrange(1, PROOFS + 1), Status.REVOKED) for _ in range(CHANGES)]

    def apply() -> bytes:
        for index, status in changes:
            bits.set(index, LIST_VALUES[status])
        return bits.compressed()

    compressed = benchmark.pedantic(apply, rounds=5, iterations=1)
    benchmark.extra_info["compressed_bytes"] = len(compressed)

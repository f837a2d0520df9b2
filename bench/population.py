"""A synthetic population of proofs for load tests: holders, requests, Zipf popularity.

Everything is deterministic from an index or a seed, so two runs offer the same load.
Holders are fictitious but well-formed (GB 11643 check characters), so the gateway's
validation runs exactly as it would for real requests.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealgate.verify.holders import resident_id_check

# 430900 is the demo region (益阳); birth dates spread over 1950–2005.
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
PROOF_TYPES = ("无犯罪记录证明", "户籍证明", "居住证明", "亲属关系证明")


def resident_id(index: int) -> str:
    """A well-formed resident identity number, distinct for each index below 10^7."""
    birth = 19500101 + (index % 55) * 10000 + (index // 55 % 12) * 100 + index // 660 % 28
    serial = index % 1000
    first17 = f"430902{birth:08d}{serial:03d}"
    return first17 + resident_id_check(first17)


def holder(index: int) -> dict[str, str]:
    name = _SURNAMES[index % len(_SURNAMES)] + _GIVEN[index // len(_SURNAMES) % len(_GIVEN)]
    return {"kind": "person", "id": resident_id(index), "name": name}


def proof_request(seal_id: str, index: int) -> dict[str, Any]:
    """One proof request as a signer sends it to ``POST /v1/certificates``."""
    return {
        "seal_id": seal_id,
        "type": PROOF_TYPES[index % len(PROOF_TYPES)],
        "holder": holder(index),
        "content": {"结论": "经查询，未发现有犯罪记录", "用途": "入职", "序号": index},
        "valid_from": "2026-11-01",
        "valid_until": "2027-10-31",
    }


@dataclass(frozen=True)
class Credentials:
    """What ``sealgate init --demo`` printed: seals and one client token per role."""

    seals: dict[str, str]  # seal id → kind
    tokens: dict[str, str]  # role → token

    @classmethod
    def parse(cls, text: str) -> Credentials:
        seals: dict[str, str] = {}
        tokens: dict[str, str] = {}
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) != 3:
                continue
            if fields[0] == "seal":
                seals[fields[1]] = fields[2]
            else:
                tokens[fields[0]] = fields[2]
        if not seals or not {"signer", "issuer", "verifier"} <= tokens.keys():
            raise ValueError("credentials need seals and a signer, issuer and verifier token")
        return cls(seals, tokens)

    @classmethod
    def read(cls, path: Path) -> Credentials:
        return cls.parse(path.read_text(encoding="utf-8"))

    @property
    def verification_seal(self) -> str:
        """The office's 查询核验专用章, which answers verification requests."""
        return next(s for s, kind in self.seals.items() if kind == "verification")

    @property
    def proof_seal(self) -> str:
        """The office's proof seal (证明专用章), the one proofs are sealed with."""
        return next(s for s, kind in self.seals.items() if kind == "proof")

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


class ZipfSampler:
    """Draws items with probability ∝ 1 / rank^s; ranks are a seeded shuffle of the items,
    so popularity is unrelated to the order of issue."""

    def __init__(self, items: Sequence[str], s: float = 1.1, seed: int = 1) -> None:
        if not items:
            raise ValueError("nothing to sample from")
        self._rng = random.Random(seed)
        self._items = list(items)
        self._rng.shuffle(self._items)
        self._cumulative = list(
            itertools.accumulate(1.0 / rank**s for rank in range(1, len(self._items) + 1))
        )

    def draw(self) -> str:
        point = self._rng.random() * self._cumulative[-1]
        return self._items[bisect.bisect_left(self._cumulative, point)]

    def stream(self, count: int) -> Iterator[str]:
        for _ in range(count):
            yield self.draw()


def read_codes(path: Path) -> list[str]:
    with path.open(encoding="ascii") as lines:
        return [line.strip() for line in lines if line.strip()]

"""The peers in the capacity harness (``--peers``): their statuses, and gateway ÷ peer."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sealgate.bench.peers.verify import REDIS_PREFIX as PEER_PREFIX
from sealgate.bench.peers.verify import Status, write_statuses
from sealgate.bench.results import Measurement, ratio_row
from sealgate.gateway.sealing import format_code
from sealgate.verify.registry import ProofStatus

REDIS_PREFIX = PEER_PREFIX.encode()
# The pyHanko peer signs a batch of 100 in about 2 s: with the gateway's 16 batches in
# flight each answer would take 16 of those, past wrk's 10 s timeout. Two keep its signer
# busy (one batch signing, the next queued) and its windows last long enough for
# PYHANKO_BATCHES_PER_WINDOW batches, so a window's rate is not a count of a few answers.
PYHANKO_CONNECTIONS = 2
PYHANKO_BATCHES_PER_WINDOW = 8
VERIFY_TARGET = 3.0  # the gateway verifies ≥ 3× the FastAPI peers (docs/design.md §9)
SEAL_TARGET = 20.0  # and seals ≥ 20× pyHanko behind FastAPI

# (row, gateway figure, peer, what, compared by, target)
PEER_ROWS = (
    ("peer_dict", "verify_cached_vs_dict", "peer_dict",
     "verify of a cached code / FastAPI dict peer", "rate", VERIFY_TARGET),
    ("peer_redis", "verify_mix_vs_redis", "peer_redis",
     "verify, Zipf mix / FastAPI one-Redis-GET peer", "rate", VERIFY_TARGET),
    ("peer_pyhanko_rate", "seal_batch_vs_pyhanko", "peer_pyhanko",
     "sealing in batches / pyHanko peer: seals/s", "rate", SEAL_TARGET),
    ("peer_pyhanko_cost", "seal_batch_vs_pyhanko", "peer_pyhanko",
     "sealing in batches / pyHanko peer: CPU-µs per proof (peer ÷ gateway)", "cost", SEAL_TARGET),
)  # fmt: skip


def peer_status(status: ProofStatus) -> Status:
    """What a verifier peer answers for a proof: its status and what it is."""
    return {
        "code": format_code(status.code),
        "status": status.status.value,
        "type": status.type,
        "unit_name": status.unit_name,
        "holder_name": status.holder_name_masked,
        "valid_from": status.valid_from,
        "valid_until": status.valid_until,
    }


def stage_statuses(batches: Iterable[list[ProofStatus]], path: Path, redis_url: str) -> int:
    """The population's statuses for the peers: one JSON object a line in ``path`` (the
    dict peer's), and the same JSON under ``peer:CODE`` in Redis (the Redis peer's)."""
    import json

    import redis as redis_py

    client = redis_py.Redis.from_url(redis_url)

    def staged() -> Iterator[Status]:
        for batch in batches:
            statuses = [peer_status(s) for s in batch]
            pipe = client.pipeline(transaction=False)
            for status in statuses:
                value = json.dumps(status, ensure_ascii=False, separators=(",", ":"))
                pipe.set(PEER_PREFIX + status["code"], value.encode())
            pipe.execute()
            yield from statuses

    try:
        return write_statuses(path, staged())
    finally:
        client.close()


def batch_seconds(url: str, body: bytes, headers: Mapping[str, str]) -> float:
    """How long one ``POST /v1/certificates`` of ``body`` takes, alone (after one to warm)."""
    import time
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the harness's own peer on loopback
        url + "/v1/certificates",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=300) as reply:  # noqa: S310
            reply.read()
        timings.append(time.perf_counter() - started)
    return timings[-1]


def peer_ratios(measured: Mapping[str, Measurement]) -> list[dict[str, Any]]:
    """Gateway ÷ peer, each the median of the gateway's windows against the peer's
    either side: by rate, and for sealing also by CPU-µs per proof (the peer's over the
    gateway's, so that more is better on both)."""
    rows = []
    for name, figure, peer, what, by, target in PEER_ROWS:
        if figure not in measured or peer not in measured:
            continue
        gateway = measured[figure]
        if by == "rate":
            pairs = gateway.pair_ratios
        else:
            pairs = [1 / cost if cost > 0 else 0.0 for cost in gateway.cost_ratios]
        if pairs:
            ratio = statistics.median(pairs)
        elif by == "rate":
            ratio = gateway.rate / measured[peer].rate
        else:
            ratio = (measured[peer].cpu_us or 0.0) / (gateway.cpu_us or 1.0)
        rows.append(ratio_row(name, what, ratio, pairs, target, gateway, measured[peer]))
    return rows

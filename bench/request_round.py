"""The automated 30-minute tier (docs/design.md §12): an office's system answers
verification requests through the API with no person in the loop. Measured as rounds:
a request created (``POST /v1/requests``, database tier) → answered and sealed with the
office's 查询核验专用章 (``POST /v1/requests/{id}/respond``), ``concurrency`` rounds in
flight for ``seconds``; rounds/s, p50/p99 of the whole round as the client sees it on
loopback, and the gateway's process tree's CPU-µs per round.

The client is Python (aiohttp) on the same machine: the rate is bounded by it as much
as by the gateway, which the CPU-µs per round (the gateway's own) does not count.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sealgate.bench.processes import cpu_by_part
from sealgate.bench.results import Measurement, Report

HOLDER = {"kind": "person", "id": "11010519491231002X", "name": "张三"}
# The office asks itself: the round's work is the same as between two offices.
OFFICE = "11430900006151330B"  # sealgate.gateway.provision.DEMO_OFFICE's code


@dataclass(frozen=True)
class RoundClients:
    requester: str  # tokens
    responder: str
    seal: str  # the verification seal the responder answers with


def provision_round_clients(argv: list[str], home: Path, seal: str) -> RoundClients:
    """A requester and a responding signer of the demo office, through the CLI."""

    def add(*extra: str) -> str:
        done = subprocess.run(
            [*argv, "--home", str(home), "client", "add", *extra, "--operator", "bench"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sealgate client add failed: {done.stderr.strip()}")
        return done.stdout.split("\t")[2].strip()

    requester = add("--name", "round requester", "--role", "requester", "--office", OFFICE)
    responder = add(
        "--name", "round responder", "--role", "signer", "--seal", seal, "--office", OFFICE
    )
    return RoundClients(requester, responder, seal)


def _new_request() -> dict[str, Any]:
    return {
        "responder": OFFICE,
        "type": "无犯罪记录证明",
        "holder": HOLDER,
        "matter": "capacity",
        "case_ref": "BENCH-1",
        "mode": "verify",
        "tier": "database",
    }


def _answer(seal: str) -> dict[str, Any]:
    return {
        "seal_id": seal,
        "holder": HOLDER,
        "content": {"结论": "经查询，未发现有犯罪记录"},
        "valid_from": "2026-11-22",
    }


async def _rounds(
    url: str, clients: RoundClients, seconds: float, concurrency: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    ask = {"Authorization": f"Bearer {clients.requester}", "X-Operator": "bench-requester"}
    answer = {"Authorization": f"Bearer {clients.responder}", "X-Operator": "bench-system"}
    body = _answer(clients.seal)
    end = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def loop() -> None:
            nonlocal errors
            while time.monotonic() < end:
                started = time.perf_counter()
                async with session.post("/v1/requests", json=_new_request(), headers=ask) as r:
                    created = await r.json()
                    if r.status != 201:
                        errors += 1
                        continue
                path = f"/v1/requests/{created['id']}/respond"
                async with session.post(path, json=body, headers=answer) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies, errors


def request_round(
    report: Report,
    pid: int,
    url: str,
    clients: RoundClients,
    *,
    seconds: float,
    concurrency: int = 32,
) -> Measurement:
    """Measure the automated 30-minute tier's rounds into ``report``."""
    before = cpu_by_part(pid)
    started = time.monotonic()
    latencies, errors = asyncio.run(_rounds(url, clients, seconds, concurrency))
    elapsed = time.monotonic() - started
    after = cpu_by_part(pid)
    count = max(len(latencies), 1)
    parts = {k: (after.get(k, 0.0) - before.get(k, 0.0)) * 1e6 / count for k in after}
    ordered = sorted(latencies)
    measurement = Measurement(
        name="request_round",
        what="request created → answered → sealed (30-minute tier, automated)",
        rate=len(latencies) / elapsed,
        cpu_us=sum(parts.values()) if latencies else None,
        p50_ms=statistics.median(ordered) * 1000 if ordered else None,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else None,
        errors=errors,
        unit="rounds/s",
        runs=[len(latencies) / elapsed],
        cpu_parts=parts,
    )
    report.add(measurement)
    return measurement

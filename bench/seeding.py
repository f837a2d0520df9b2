"""Seeding a population of real sealed proofs through the bulk path, with progress.

The bulk path is the API's own: ``POST /v1/certificates`` with ``{"items": [...]}`` of up
to 1,000 proofs, several batches in flight, so every seeded proof is sealed by the token,
registered and verifiable exactly like one sealed in production. Codes are appended to
a file as batches are answered, so an interrupted seeding resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from sealgate.bench.population import Credentials, proof_request
from sealgate.errors import Error


class SeedingFailed(Error, RuntimeError):
    """The gateway refused a batch."""


#: A refused batch (429, 503: the gateway's "retry later") is sent again with the same
#: Idempotency-Key, as a client should, after its Retry-After, this many times at most.
RETRIES = 8


async def seal_batch(
    session: aiohttp.ClientSession, items: list[dict[str, Any]], first: int
) -> dict[str, Any]:
    """Seal ``items`` once, whatever the retries: each try carries the same key."""
    key = f"seed-{uuid.uuid4().hex}"
    for attempt in range(RETRIES + 1):
        async with session.post(
            "/v1/certificates", json={"items": items}, headers={"Idempotency-Key": key}
        ) as reply:
            if reply.status == 201:
                answer: dict[str, Any] = await reply.json()
                return answer
            text = (await reply.text())[:500]
            retry_after = reply.headers.get("Retry-After", "")
            if reply.status not in (429, 503) or not retry_after.isdigit() or attempt == RETRIES:
                raise SeedingFailed(f"batch at {first}: HTTP {reply.status}: {text}")
        print(
            f"batch at {first}: HTTP {reply.status}, retrying in {retry_after} s: {text}",
            file=sys.stderr,
        )
        await asyncio.sleep(min(int(retry_after), 5))
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """One line on stderr: done/total, rate, ETA; redrawn in place on a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.started = time.monotonic()
        self._shown = 0.0
        self._tty = stream.isatty()

    def update(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._shown < (0.5 if self._tty else 10.0):
            return
        self._shown = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        filled = int(width * done / self.total) if self.total else width
        line = (
            f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} "
            f"{rate:,.0f}/s " + (f"ETA {eta:,.0f}s" if not final else f"in {elapsed:,.1f}s")
        )
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


async def seed(
    url: str,
    credentials: Credentials,
    codes_file: Path,
    target: int,
    *,
    batch: int = 1000,
    in_flight: int = 4,
) -> int:
    """Seal proofs until ``codes_file`` lists ``target`` codes; returns how many were added."""
    have = 0
    if codes_file.exists():
        with codes_file.open(encoding="ascii") as lines:
            have = sum(1 for line in lines if line.strip())
    missing = max(0, target - have)
    if missing == 0:
        return 0
    seal = credentials.proof_seal
    progress = Progress(missing, "seeding proofs")
    done = 0
    next_index = have
    lock = asyncio.Lock()
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        url, headers=credentials.auth("signer"), timeout=timeout
    ) as session:
        with codes_file.open("a", encoding="ascii") as out:

            async def worker() -> None:
                nonlocal done, next_index
                while True:
                    async with lock:
                        if next_index >= target:
                            return
                        first = next_index
                        size = min(batch, target - first)
                        next_index += size
                    items = [proof_request(seal, i) for i in range(first, first + size)]
                    answer = await seal_batch(session, items, first)
                    out.write("".join(item["code"] + "\n" for item in answer["items"]))
                    done += size
                    progress.update(done)

            await asyncio.gather(*(worker() for _ in range(in_flight)))
            out.flush()
    progress.update(done, final=True)
    return done

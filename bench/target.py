"""``sealgate bench capacity --target URL``: a deployment already running, measured from
outside, as its operator would before a peak (docs/capacity.md, "A running deployment").

Nothing is started here and nothing on the target is measured from inside: no floors, no
CPU-µs, only what a client sees (throughput of closed-loop wrk, latency percentiles at
offered loads). Figures are absolute, for this client machine and network; run the client
close to the gateway, or on several machines, when the network is the bottleneck.

Read-only unless told: it verifies the codes of ``--codes FILE`` (one per line, from the
city's own records) with a verifier's token for ``--purpose``. With ``--allow-sealing``
(and a signer's token and a seal) it also measures sealing in batches, and may then seal
the codes it verifies when no file is given: proofs that stay in the registry, marked by
their type ``bench capacity``.

Tokens come from files (``--token-file``), never from the command line, where every user
of the machine could read them in the process list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from sealgate.bench.population import ZipfSampler, proof_request
from sealgate.bench.results import machine
from sealgate.bench.wrk import WrkResult, run_wrk
from sealgate.errors import Error

FRACTIONS = (0.25, 0.5, 0.75, 0.9)  # of the closed-loop peak: the latency at offered loads
BENCH_TYPE = "bench capacity"


class TargetError(Error):
    """The target cannot be measured as asked (unreachable, refused, no codes)."""


@dataclass(frozen=True)
class TargetOptions:
    url: str
    out: Path
    token: str  # a verifier's
    purpose: str = "demo"
    codes_file: Path | None = None
    seconds: float = 5.0
    rounds: int = 3
    connections: int = 64
    warmup: float = 2.0
    zipf: float = 1.0
    # sealing, only with allow_sealing
    allow_sealing: bool = False
    seal_token: str | None = None
    seal_id: str | None = None
    batch: int = 100
    seal_batches: int = 20
    seed_codes: int = 1000  # sealed to verify when no codes file is given


@dataclass
class TargetReport:
    url: str
    started: str
    client: str
    options: dict[str, str]
    readiness: dict[str, Any] = field(default_factory=dict)
    figures: list[dict[str, Any]] = field(default_factory=list)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_target(options: TargetOptions) -> Path:
    """Measure the deployment at ``options.url``; returns the report's path."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    report = TargetReport(
        url=options.url,
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        client=machine(),
        options={k: str(v) for k, v in asdict(options).items() if "token" not in k},
    )
    verifier = {"Authorization": f"Bearer {options.token}"}
    report.readiness = asyncio.run(_preflight(options))
    codes = _codes(options, report)
    one = out / "target-one-path.txt"
    one.write_text(_path(codes[0], options.purpose) + "\n", encoding="ascii")
    mix = out / "target-zipf-paths.txt"
    with mix.open("w", encoding="ascii") as paths:
        for code in ZipfSampler(codes, s=options.zipf, seed=7).stream(100_000):
            paths.write(_path(code, options.purpose) + "\n")

    _step(f"verification of one code ({options.rounds} windows)")
    peak = _figure(report, "verify_one", "verify, one code", one, verifier, options)
    _step(f"verification over a Zipf mix (s={options.zipf}) of {len(codes):,} codes")
    _figure(report, "verify_mix", "verify, Zipf mix", mix, verifier, options)
    _step("verification of one code at offered loads")
    for fraction in FRACTIONS:
        result = run_wrk(
            options.url,
            one,
            seconds=options.seconds,
            connections=max(options.connections, 128),
            rate=peak * fraction,
            headers=verifier,
        )
        point = {"fraction": fraction, "offered": peak * fraction, **_summary(result)}
        report.sweep.append(point)
        _step(
            f"  offered {peak * fraction:,.0f}/s: achieved {result.rate:,.0f}/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, errors {result.errors}"
        )
    if options.allow_sealing:
        _step(f"sealing: {options.seal_batches} batches of {options.batch}")
        report.figures.append(asyncio.run(_seal_rate(options)))
    return _write(report, out)


def _step(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


def _path(code: str, purpose: str) -> str:
    return f"/v1/verify/{code}?purpose={quote(purpose, safe='')}"


async def _preflight(options: TargetOptions) -> dict[str, Any]:
    """The target's readiness. The token is tried on the first real code (see
    :func:`_check_first`): a made-up one would cost a failed lookup."""
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(options.url, timeout=timeout) as session,
            session.get("/readyz") as reply,
        ):
            ready: dict[str, Any] = await reply.json(content_type=None)
            if reply.status != 200:
                raise TargetError(f"the target is not ready: {json.dumps(ready)}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TargetError(f"cannot reach {options.url}: {type(exc).__name__}: {exc}") from None
    return ready


def _codes(options: TargetOptions, report: TargetReport) -> list[str]:
    if options.codes_file is not None:
        try:
            lines = options.codes_file.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise TargetError(f"cannot read {options.codes_file}: {exc.strerror}") from None
        codes = [line.strip() for line in lines if line.strip()]
        if not codes:
            raise TargetError(f"{options.codes_file} holds no codes")
        report.notes.append(f"Verified {len(codes):,} codes from {options.codes_file.name}.")
    elif options.allow_sealing:
        codes = asyncio.run(_seal(options, options.seed_codes))
        report.notes.append(
            f"Sealed {len(codes):,} proofs of type {BENCH_TYPE!r} to verify (they stay)."
        )
    else:
        raise TargetError(
            "give --codes FILE (codes registered on the target), or --allow-sealing to seal some"
        )
    asyncio.run(_check_first(options, codes[0]))
    return codes


async def _check_first(options: TargetOptions, code: str) -> None:
    headers = {"Authorization": f"Bearer {options.token}"}
    async with (
        aiohttp.ClientSession(options.url, timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(_path(code, options.purpose), headers=headers) as reply,
    ):
        if reply.status != 200:
            problem = (await reply.text())[:300]
            raise TargetError(
                f"verifying the first code answered {reply.status}: {problem.strip()}"
            )


def _proof(seal_id: str, n: int) -> dict[str, Any]:
    """The harness's own proof request, marked by its type and in force from today (a
    deployment's clock is now, not the seeded population's dates)."""
    today = dt.date.today()
    return {
        **proof_request(seal_id, n),
        "type": BENCH_TYPE,
        "valid_from": today.isoformat(),
        "valid_until": (today + dt.timedelta(days=30)).isoformat(),
    }


async def _seal(options: TargetOptions, count: int) -> list[str]:
    if not options.seal_token or not options.seal_id:
        raise TargetError("--allow-sealing needs --seal-token-file and --seal")
    headers = {"Authorization": f"Bearer {options.seal_token}"}
    codes: list[str] = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(options.url, headers=headers, timeout=timeout) as session:
        for first in range(0, count, options.batch):
            items = [
                _proof(options.seal_id, n) for n in range(first, min(count, first + options.batch))
            ]
            async with session.post("/v1/certificates", json={"items": items}) as reply:
                if reply.status != 201:
                    raise TargetError(
                        f"sealing answered {reply.status}: {(await reply.text())[:300]}"
                    )
                codes += [item["code"] for item in (await reply.json())["items"]]
    return codes


async def _seal_rate(options: TargetOptions) -> dict[str, Any]:
    """Seals a second through the batch path, 4 batches in flight (as a bulk issuer)."""
    started = time.monotonic()
    waits: list[float] = []

    async def one_batch() -> None:
        begun = time.monotonic()
        await _seal(options, options.batch)
        waits.append(time.monotonic() - begun)

    queue = list(range(options.seal_batches))

    async def worker() -> None:
        while queue:
            queue.pop()
            await one_batch()

    await asyncio.gather(*(worker() for _ in range(4)))
    elapsed = time.monotonic() - started
    sealed = options.batch * options.seal_batches
    return {
        "name": "seal_batch",
        "what": f"sealing, batches of {options.batch}, 4 in flight",
        "rate": sealed / elapsed,
        "unit": "seals/s",
        "p50_ms": statistics.median(waits) * 1000,
        "p99_ms": max(waits) * 1000,
        "errors": 0,
    }


def _summary(result: WrkResult) -> dict[str, Any]:
    return {
        "achieved": result.rate,
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
    }


def _figure(
    report: TargetReport,
    name: str,
    what: str,
    paths: Path,
    headers: dict[str, str],
    options: TargetOptions,
) -> float:
    """``options.rounds`` closed-loop windows after a warm-up; their median rate."""
    if options.warmup > 0:
        run_wrk(
            options.url,
            paths,
            seconds=options.warmup,
            connections=options.connections,
            headers=headers,
        )
    windows = [
        run_wrk(
            options.url,
            paths,
            seconds=options.seconds,
            connections=options.connections,
            headers=headers,
            start=index * 20_000,
        )
        for index in range(options.rounds)
    ]
    rate = statistics.median(w.rate for w in windows)
    errors = sum(w.errors for w in windows)
    report.figures.append(
        {
            "name": name,
            "what": what,
            "rate": rate,
            "unit": "req/s",
            "windows": [round(w.rate) for w in windows],
            "p50_ms": statistics.median(w.p50_ms for w in windows),
            "p99_ms": statistics.median(w.p99_ms for w in windows),
            "errors": errors,
        }
    )
    _step(
        f"  {what}: {rate:,.0f} req/s (windows {', '.join(f'{w.rate:,.0f}' for w in windows)})"
        + (f", {errors} errors" if errors else "")
    )
    if errors:
        report.notes.append(
            f"{what}: {errors:,} answers were errors (status >= 400 or transport): "
            "a limit (429), the token, or the target's health; the rate counts them."
        )
    return rate


def _write(report: TargetReport, out: Path) -> Path:
    (out / "target-results.json").write_text(
        json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lines = [
        f"# Capacity of {report.url}",
        "",
        f"Measured from outside on {report.started} by {report.client}. No floors: these are "
        "absolute figures for this client and network, not ratios (docs/capacity.md).",
        "",
        "| figure | rate | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {f['what']} | {f['rate']:,.0f} {f['unit']} | {f['p50_ms']:.2f} | "
            f"{f['p99_ms']:.2f} | {f['errors']:,} |"
            for f in report.figures
        ),
        "",
        "| offered load | achieved | p50 ms | p90 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {p['offered']:,.0f}/s ({p['fraction']:.0%} of peak) | {p['achieved']:,.0f}/s | "
            f"{p['p50_ms']:.2f} | {p['p90_ms']:.2f} | {p['p99_ms']:.2f} | {p['errors']:,} |"
            for p in report.sweep
        ),
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    path = out / "target-report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines), file=sys.stderr)
    print(f"report: {path}", file=sys.stderr)
    return path

"""Verification of one cached code at offered loads from 10 % to 120 % of its peak (wrk
paced on a fixed schedule): the report's latency plots and its judged p99."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from sealgate.bench.options import Options
from sealgate.bench.results import Report
from sealgate.bench.windows import measure

HALF = 0.5  # the offered load whose p99 is judged (docs/design.md §9)
SWEEP = (0.1, 0.25, HALF, 0.75, 0.9, 1.0, 1.2)


def sweep(
    report: Report,
    pid: int,
    url: str,
    one: Path,
    options: Options,
    peak: float,
    verifier: dict[str, str],
) -> None:
    """Each of :data:`SWEEP`'s fractions of ``peak`` offered in turn; a point each in
    ``report.sweep``."""
    for fraction in SWEEP:
        offered = peak * fraction
        # the judged point (p99 at half the rate) in as many windows as a ratio,
        # its latencies their medians: one stall of the guest decides a window's
        # p99, and should not decide the figure unseen
        results = [
            measure(
                pid,
                url,
                one,
                options,
                connections=256,
                rate=offered,
                seconds=options.sweep_seconds,
                headers=verifier,
                warmup=0.0,
            )[0]
            for _ in range(options.rounds if fraction == HALF else 1)
        ]
        point: dict[str, Any] = {
            "fraction": fraction,
            "offered": offered,
            "achieved": statistics.fmean(r.rate for r in results),
            "p50_ms": statistics.median(r.p50_ms for r in results),
            "p90_ms": statistics.median(r.p90_ms for r in results),
            "p99_ms": statistics.median(r.p99_ms for r in results),
            "errors": float(sum(r.errors for r in results)),
        }
        windows = ""
        if len(results) > 1:
            point["p99_windows"] = [r.p99_ms for r in results]
            windows = f" (median of {', '.join(f'{r.p99_ms:.2f}' for r in results)})"
        report.sweep.append(point)
        print(
            f"  offered {offered:,.0f}/s: achieved {point['achieved']:,.0f}/s, "
            f"p50 {point['p50_ms']:.2f} ms, p99 {point['p99_ms']:.2f} ms{windows}",
            file=sys.stderr,
        )

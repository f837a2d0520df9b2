"""What a capacity run found: its measurements and the rows of its ratio tables, the
inputs of ``report.md`` and ``results.json`` (:mod:`sealgate.bench.report`)."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealgate.bench.processes import ordered_parts


@dataclass
class Measurement:
    name: str
    what: str
    rate: float  # requests (or signatures, or seals) per second
    cpu_us: float | None  # CPU-µs per unit, the service's whole process tree
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    unit: str = "req/s"
    runs: list[float] = field(default_factory=list)  # each window's rate, in order
    cpu_runs: list[float] = field(default_factory=list)  # each window's CPU-µs per unit
    # a gateway figure's windows, each against the mean of the floor windows either side:
    # by rate, and by CPU-µs per unit (the figure's cost over its floor's)
    pair_ratios: list[float] = field(default_factory=list)
    cost_ratios: list[float] = field(default_factory=list)
    steal: float | None = None  # the host's steal share of CPU time over the windows
    cpu_parts: dict[str, float] = field(default_factory=dict)  # cpu_us by part (processes)


@dataclass
class Report:
    started: str
    machine: str
    population: int
    options: dict[str, Any]
    measurements: dict[str, Measurement] = field(default_factory=dict)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    peer_ratios: list[dict[str, Any]] = field(default_factory=list)  # gateway ÷ peer
    sweep: list[dict[str, Any]] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)
    locust: str | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, measurement: Measurement) -> None:
        self.measurements[measurement.name] = measurement
        m = measurement
        latency = f", p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms" if m.p99_ms is not None else ""
        cpu = f", {m.cpu_us:.0f} CPU-µs each" if m.cpu_us is not None else ""
        errors = f", {m.errors} errors" if m.errors else ""
        runs = f" (windows {', '.join(f'{r:,.0f}' for r in m.runs)})" if len(m.runs) > 1 else ""
        pairs = ", ".join(f"{r:.2f}" for r in m.pair_ratios)
        ratios = f"; to its floor, window by window: {pairs}" if pairs else ""
        print(
            f"  {m.what}: {m.rate:,.0f} {m.unit}{runs}{cpu}{latency}{errors}{ratios}",
            file=sys.stderr,
        )
        if len(m.cpu_parts) > 1:
            parts = ", ".join(f"{part} {us:.0f}" for part, us in ordered_parts(m.cpu_parts))
            print(f"    CPU-µs each by part: {parts}", file=sys.stderr)


def ratio_row(
    name: str,
    what: str,
    ratio: float,
    pairs: list[float],
    target: float | None,
    *measured: Measurement,
    at_most: bool = False,
) -> dict[str, Any]:
    """A row of the ratio tables; ``at_most``: the target is an upper bound (a cost)."""
    # an error answer (a 503, a 4xx) is fast and proves nothing: it fails
    errors = sum(x.errors for x in measured)
    if target is None:
        verdict = None
    else:
        verdict = (ratio <= target if at_most else ratio >= target) and not errors
    return {
        "name": name,
        "what": what + (f" ({errors} errors)" if errors else ""),
        "ratio": ratio,
        "pairs": pairs,
        "target": target,
        "at_most": at_most,
        "pass": verdict,
    }


def machine() -> str:
    """This machine as the report names it: cores, architecture, CPU model, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = model or "unknown CPU"
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {platform.machine()}, {cpu}, Python {python}"

"""Measured windows and how a figure is compared with its floor: windows alternating
floor, figure, floor, ..., each figure window against the floor windows either side of it
(a shared host's speed drifts within a minute; only windows seconds apart see the same
host)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sealgate.bench.options import Options
from sealgate.bench.processes import cpu_by_part, host_steal_ticks
from sealgate.bench.results import Measurement, Report
from sealgate.bench.wrk import WrkResult, run_wrk


@dataclass(frozen=True)
class Window:
    """One measured window: a wrk run against a service, or a run of the sign floor."""

    rate: float
    cpu_us: float
    count: int  # requests (signatures for the sign floor)
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    steal: float | None = None
    cpu_parts: dict[str, float] = field(default_factory=dict)  # cpu_us by part


def combined(name: str, what: str, windows: list[Window], unit: str = "req/s") -> Measurement:
    """Windows as one measurement: the mean rate, CPU-µs over all of their requests, the
    median p50 and the worst p99."""
    count = sum(w.count for w in windows)
    cpu_us = sum(w.cpu_us * w.count for w in windows) / count if count else math.inf
    p50s = [w.p50_ms for w in windows if w.p50_ms is not None]
    p99s = [w.p99_ms for w in windows if w.p99_ms is not None]
    steals = [w.steal for w in windows if w.steal is not None]
    parts: dict[str, float] = {}
    for w in windows if count else []:  # no request answered: no CPU to share out
        for part, us in w.cpu_parts.items():
            parts[part] = parts.get(part, 0.0) + us * w.count / count
    return Measurement(
        name,
        what,
        statistics.fmean(w.rate for w in windows),
        cpu_us,
        statistics.median(p50s) if p50s else None,
        max(p99s) if p99s else None,
        sum(w.errors for w in windows),
        unit,
        [w.rate for w in windows],
        [w.cpu_us for w in windows],
        steal=statistics.fmean(steals) if steals else None,
        cpu_parts=parts,
    )


def alternate(
    floor: Callable[[], Window], figure: Callable[[int], Window], rounds: int
) -> tuple[list[Window], list[Window], list[float]]:
    """Floor, figure, floor, ... for ``rounds`` figure windows; returns the floor's
    windows, the figure's, and each figure window's ratio to the floor windows around it."""
    floors = [floor()]
    figures = []
    for index in range(rounds):
        figures.append(figure(index))
        floors.append(floor())
    return floors, figures, window_ratios(figures, floors, lambda w: w.rate)


def window_ratios(
    figures: list[Window], floors: list[Window], value: Callable[[Window], float]
) -> list[float]:
    """Each figure window's ``value`` over the mean of the floor windows either side of it
    (``floors`` has one window more than ``figures``)."""
    ratios = []
    for g, a, b in zip(figures, floors, floors[1:], strict=False):
        around = (value(a) + value(b)) / 2
        ratios.append(value(g) / around if around > 0 else 0.0)
    return ratios


def paired(
    report: Report,
    rounds: int,
    floor: tuple[str, str, Callable[[], Window]],
    figure: tuple[str, str, Callable[[int], Window]],
    unit: str = "req/s",
    floor_unit: str = "req/s",
) -> Measurement:
    """A gateway figure in ``rounds`` windows alternating with its floor's; both go into
    the report, the figure with its ratio to the floor in each pair of windows."""
    floor_name, floor_what, floor_window = floor
    name, what, figure_window = figure
    floors, figures, ratios = alternate(floor_window, figure_window, rounds)
    report.add(combined(floor_name, floor_what, floors, floor_unit))
    measurement = combined(name, what, figures, unit)
    measurement.pair_ratios = ratios
    measurement.cost_ratios = window_ratios(figures, floors, lambda w: w.cpu_us)
    report.add(measurement)
    return measurement


def measure(
    pid: int,
    url: str,
    paths: Path,
    options: Options,
    *,
    connections: int | None = None,
    rate: float = 0.0,
    seconds: float | None = None,
    body: Path | None = None,
    headers: dict[str, str] | None = None,
    warmup: float | None = None,
    start: int = 0,
    per: int = 1,
    beside: Mapping[str, int] | None = None,
) -> tuple[WrkResult, Window]:
    """One wrk run after a warm-up: wrk's result, and the window it makes with ``per``
    units (seals) a request: their rate, CPU-µs each of ``pid``'s tree in all and by
    part, and the host's steal share of CPU time during the run. ``beside``: services the
    gateway calls (part name → pid, e.g. the TSA), each of whose trees counts as a part."""
    conns = connections or options.connections
    warm = options.warmup if warmup is None else warmup
    if warm > 0:
        run_wrk(url, paths, seconds=warm, connections=conns, rate=rate, body=body, headers=headers)
    steal_before = host_steal_ticks()
    others = dict(beside or {})
    before = {**cpu_by_part(pid), **_service_cpu(others)}
    result = run_wrk(
        url,
        paths,
        seconds=seconds or options.seconds,
        connections=conns,
        rate=rate,
        body=body,
        headers=headers,
        start=start,
    )
    after = {**cpu_by_part(pid), **_service_cpu(others)}
    steal = steal_share(steal_before, host_steal_ticks())
    units = result.requests * per
    parts = {
        part: (spent - before.get(part, 0.0)) / units * 1e6 if units else math.inf
        for part, spent in after.items()
    }
    window = Window(
        result.rate * per,
        sum(parts.values()) if units else math.inf,
        units,
        result.p50_ms,
        result.p99_ms,
        result.errors,
        steal,
        parts,
    )
    return result, window


def _service_cpu(services: Mapping[str, int]) -> dict[str, float]:
    return {part: sum(cpu_by_part(pid).values()) for part, pid in services.items()}


def service_windows(pid: int, url: str, paths: Path, options: Options) -> Callable[[], Window]:
    """Measures a window of a floor (or peer) service; the first one after a warm-up."""
    warmed = False

    def window() -> Window:
        nonlocal warmed
        warmup = 0.0 if warmed else options.warmup
        warmed = True
        return measure(pid, url, paths, options, warmup=warmup)[1]

    return window


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The host's steal share of CPU time between two readings of its ticks."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])

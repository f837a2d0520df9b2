"""The gateway's verification windows: one cached code again and again, and the Zipf mix
of the population, a fixed sequence of codes of which each window takes its own stretch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sealgate.bench.options import Options
from sealgate.bench.population import ZipfSampler
from sealgate.bench.windows import Window, measure


@dataclass(frozen=True)
class ZipfPaths:
    """wrk's file of Zipf-popular verification paths: the first half for warm-ups, the
    second cut into ``stretches`` stretches, one a measured window."""

    path: Path
    count: int
    stretches: int

    def start(self, index: int) -> int:
        """Where window ``index``'s stretch starts: after a longer warm-up (the popular
        codes reach Redis and the worker's own tier), each window takes its own stretch of
        the sequence's second half, never a replay of the warm-up's or another window's."""
        stretch = self.count // (2 * self.stretches)
        return self.count // 2 + index * stretch


def write_zipf_paths(out: Path, codes: list[str], options: Options) -> ZipfPaths:
    """A fixed sequence of Zipf-popular verification paths, long enough not to repeat
    within a measurement."""
    # the second half holds every measured window's own stretch, at up to 25 k req/s
    # (the gateway's windows beside the Redis peer take stretches of their own)
    stretches = options.rounds * (2 if options.peers else 1)
    count = max(200_000, int(2 * stretches * options.seconds * 25_000))
    sampler = ZipfSampler(codes, s=options.zipf, seed=7)
    path = out / "zipf-paths.txt"
    with path.open("w", encoding="ascii") as paths:
        for code in sampler.stream(count):
            paths.write(f"/v1/verify/{code}?purpose=demo\n")
    return ZipfPaths(path, count, stretches)


def write_one_path(out: Path, code: str) -> Path:
    """wrk's file of one verification path, the cached code's."""
    one = out / "one-path.txt"
    one.write_text(f"/v1/verify/{code}?purpose=demo\n", encoding="ascii")
    return one


def verify_windows(
    pid: int,
    url: str,
    paths: Path,
    options: Options,
    verifier: dict[str, str],
    warmup: float,
    starts: Callable[[int], int] | None = None,
) -> Callable[[int], Window]:
    """Window ``index`` of verifying the codes of ``paths``, the first after ``warmup``
    seconds; ``starts``: where in ``paths`` each window starts (else at the top)."""

    def window(index: int) -> Window:
        start = starts(index) if starts else 0
        first = warmup if index == 0 else 0.0
        return measure(pid, url, paths, options, headers=verifier, warmup=first, start=start)[1]

    return window

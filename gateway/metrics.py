"""Prometheus metrics for one worker process: request counts and latency by route."""

from __future__ import annotations

import bisect
from collections import defaultdict

# Latency buckets in seconds, from sub-millisecond cache hits to slow seal batches.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self._requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: defaultdict[str, list[float]] = defaultdict(
            lambda: [0.0] * (len(BUCKETS) + 2)  # buckets..., +Inf, sum
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests[(route, method, status)] += 1
        row = self._latency[route]
        # One bucket per observation (made cumulative when rendered): this runs per request.
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    def render(self) -> bytes:
        lines = [
            "# HELP sealgate_requests_total HTTP requests answered, by route and status.",
            "# TYPE sealgate_requests_total counter",
        ]
        for (route, method, status), count in sorted(self._requests.items()):
            lines.append(
                f'sealgate_requests_total{{route="{route}",method="{method}",status="{status}"}}'
                f" {count}"
            )
        lines += [
            "# HELP sealgate_request_seconds Time to answer, by route.",
            "# TYPE sealgate_request_seconds histogram",
        ]
        for route, row in sorted(self._latency.items()):
            cumulative = 0
            for i, bound in enumerate(BUCKETS):
                cumulative += int(row[i])
                lines.append(
                    f'sealgate_request_seconds_bucket{{route="{route}",le="{bound}"}} {cumulative}'
                )
            total = cumulative + int(row[len(BUCKETS)])
            lines.append(f'sealgate_request_seconds_bucket{{route="{route}",le="+Inf"}} {total}')
            lines.append(f'sealgate_request_seconds_sum{{route="{route}"}} {row[-1]:.6f}')
            lines.append(f'sealgate_request_seconds_count{{route="{route}"}} {total}')
        return ("\n".join(lines) + "\n").encode()

"""The public check (``GET /check``): anyone types a code and learns only whether the proof
is valid, its type, its issuing unit and its dates. No holder data, no token.

With no client to hold to account, each client address gets a bucket of
``check_per_minute`` checks (a city setting, default 20) refilled over a minute, on top
of the failed-lookup limits every verifier has (an address is its client id there). A
refusal is a 429 whose detail is Chinese, for the page shows it as it is. Behind a
balancer the address is the balancer's own unless it passes the client's on: nginx in
deploy/ sets it in X-Real-IP, which :func:`client_address` takes from loopback only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiohttp import web

from sealgate.gateway.problems import Problem

MAX_ADDRESSES = 100_000
DEFAULT_CHECK_PER_MINUTE = 20
_TRUSTED_PROXIES = ("127.0.0.1", "::1")


def client_address(request: web.BaseRequest) -> str:
    remote = request.remote or "unknown"
    forwarded = request.headers.get("X-Real-IP", "").strip()
    if remote in _TRUSTED_PROXIES and forwarded and len(forwarded) <= 45:
        return forwarded
    return remote


def too_many_checks(retry_after: float) -> Problem:
    seconds = max(1, math.ceil(retry_after))
    return Problem(
        429,
        "too-many-checks",
        "查询过于频繁",
        f"您的查询过于频繁，请于 {seconds} 秒后再试。",
        headers={"Retry-After": str(seconds)},
    )


class CheckBuckets:
    """A token bucket per client address: ``per_minute`` checks, refilled over a minute."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address → (tokens, at)

    def admit(self, address: str) -> None:
        """Take one check from the address's bucket, or raise the 429."""
        now = self._clock()
        tokens, at = self._buckets.get(address, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            raise too_many_checks((1.0 - tokens) / self._rate)
        if len(self._buckets) >= MAX_ADDRESSES and address not in self._buckets:
            self._buckets.clear()  # a flood of addresses: forget, rather than grow
        self._buckets[address] = (tokens - 1.0, now)

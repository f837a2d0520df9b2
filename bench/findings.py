"""What a run's measurements mean: each figure's ratio to its floor against its target
(docs/design.md §9), the judged p99, the peers' ratios, and the machines a city needs."""

from __future__ import annotations

import math
import os
import statistics

from sealgate.bench.results import Report, ratio_row
from sealgate.bench.sweep import HALF

# What a 25 M-person city needs (docs/design.md §9).
CITY_NEEDS = {
    "verifications/s at peak": ("verify_mix", 50_000),
    "verifications/s in a burst": ("verify_mix", 150_000),
    "seals/s online": ("seal_single", 200),
    "seals/s for a one-night re-issue": ("seal_batch", 3_500),
}
# Sealing's cost ratio (docs/design.md §9): a proof is one CMS SignedData, one HSM signature.
SIGNATURES_PER_PROOF = 1
SEAL_COST_TARGET = 2.5
TARGET_UTILISATION = 0.7  # plan machines to run at most this busy


def derive(report: Report, peers: bool) -> None:
    """Fills ``report``'s ratios, peer ratios (with ``peers``) and machines from its
    measurements and sweep."""
    m = report.measurements
    pairs = [
        ("verify_cached", "trivial", 0.75, "verify of a cached code / trivial handler"),
        ("verify_mix", "redis_get", 1.0, "verify, Zipf mix / one-Redis-GET handler"),
        # on 2 cores bounded by the co-located processes: for information (docs/design.md §9)
        ("seal_batch", "sign", None, "sealing in batches / raw PKCS#11 sign rate"),
        ("seal_single", "sign", None, "sealing one per request / raw PKCS#11 sign rate"),
    ]
    for name, floor, target, what in pairs:
        if name in m and floor in m:
            pairs_of = m[name].pair_ratios
            ratio = statistics.median(pairs_of) if pairs_of else m[name].rate / m[floor].rate
            report.ratios.append(ratio_row(name, what, ratio, pairs_of, target, m[name], m[floor]))
            if name != "seal_batch":
                continue
            # the cost ratio: CPU-µs per sealed proof over all the gateway's processes
            # against the raw sign's CPU-µs for the signatures a proof needs
            costs = [r / SIGNATURES_PER_PROOF for r in m[name].cost_ratios]
            cost = (
                statistics.median(costs)
                if costs
                else (m[name].cpu_us or math.inf)
                / ((m[floor].cpu_us or math.inf) * SIGNATURES_PER_PROOF)
            )
            report.ratios.append(
                ratio_row(
                    "seal_cost",
                    "sealing in batches: CPU-µs per proof / raw sign's CPU-µs per signature",
                    cost,
                    costs,
                    SEAL_COST_TARGET,
                    m[name],
                    m[floor],
                    at_most=True,
                )
            )
    half = min(report.sweep, key=lambda p: abs(p["fraction"] - HALF), default=None)
    if half is not None:
        report.ratios.append(
            {
                "what": "p99 at half the cached-verify rate (ms)",
                "ratio": half["p99_ms"],
                "pairs": half.get("p99_windows", []),
                "target": 10.0,
                "pass": half["p99_ms"] <= 10.0,
                "name": "p99_half",
                "at_most": True,
            }
        )
    if peers:
        from sealgate.bench.peers.harness import peer_ratios

        report.peer_ratios = peer_ratios(m)
    cores = os.cpu_count() or 1
    for need, (name, amount) in CITY_NEEDS.items():
        if name not in m or not m[name].cpu_us:
            continue
        cpu_us = m[name].cpu_us or math.inf
        per_core = 1e6 / cpu_us * TARGET_UTILISATION
        report.machines.append(
            {
                "need": need,
                "amount": amount,
                "basis": m[name].what,
                "cpu_us": cpu_us,
                "per_core": per_core,
                "machines_like_this": math.ceil(amount / (per_core * cores)),
                "cores": cores,
                "machines_16_core": math.ceil(amount / (per_core * 16)),
            }
        )

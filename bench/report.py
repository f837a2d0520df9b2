"""The capacity report: ``report.md``, ``results.json`` and the PNG plots of one run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealgate.bench.processes import ordered_parts

if TYPE_CHECKING:
    from sealgate.bench.results import Report


def ratio_table(report: Report, rows: list[dict[str, Any]] | None = None) -> str:
    """The ratio rows (by default the floors'); a target is a lower bound unless the row
    says ``at_most`` (a cost, a latency); a row without one is for information."""
    lines = ["| figure | measured | target | |", "|---|---:|---:|---|"]
    for row in report.ratios if rows is None else rows:
        bound = "≤" if row.get("at_most") else "≥"
        target = "" if row["target"] is None else f"{bound} {row['target']:g}"
        verdict = {True: "pass", False: "**FAIL**", None: "for information"}[row["pass"]]
        value = f"{row['ratio']:.2f}" if "ms" in row["what"] else f"{row['ratio']:.2f}×"
        pairs = row.get("pairs") or []
        if len(pairs) > 1:  # the median of the windows' ratios: show their spread
            value += f" ({min(pairs):.2f}–{max(pairs):.2f} in {len(pairs)} windows)"
        lines.append(f"| {row['what']} | {value} | {target} | {verdict} |")
    return "\n".join(lines)


def measurement_table(report: Report) -> str:
    lines = [
        "| measurement | rate | CPU-µs each | p50 ms | p99 ms | errors | host steal |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report.measurements.values():
        cpu = f"{m.cpu_us:.0f}" if m.cpu_us is not None else ""
        p50 = f"{m.p50_ms:.2f}" if m.p50_ms is not None else ""
        p99 = f"{m.p99_ms:.2f}" if m.p99_ms is not None else ""
        # measured in windows (alternating with the floor's): their mean, each shown
        runs = f" (windows: {', '.join(f'{r:,.0f}' for r in m.runs)})" if len(m.runs) > 1 else ""
        rate = f"{m.rate:,.0f} {m.unit}{runs}"
        steal = f"{m.steal:.1%}" if m.steal is not None else ""
        lines.append(f"| {m.what} | {rate} | {cpu} | {p50} | {p99} | {m.errors} | {steal} |")
    return "\n".join(lines)


def parts_table(report: Report) -> str:
    """CPU-µs each by part, for the measurements of a service with more than one."""
    measured = [m for m in report.measurements.values() if len(m.cpu_parts) > 1]
    if not measured:
        return ""
    every = {part: 0.0 for m in measured for part in m.cpu_parts}
    names = [part for part, _ in ordered_parts(every)]
    lines = [
        f"| measurement | {' | '.join(names)} | in all |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for m in measured:
        cells = " | ".join(f"{m.cpu_parts[n]:.0f}" if n in m.cpu_parts else "" for n in names)
        lines.append(f"| {m.what} | {cells} | {m.cpu_us:.0f} |")
    return "\n".join(lines)


def machines_table(report: Report) -> str:
    if not report.machines:
        return ""
    cores = report.machines[0]["cores"]
    lines = [
        f"| need | basis | CPU-µs each | machines like this ({cores} cores) | 16-core machines |",
        "|---|---|---:|---:|---:|",
    ]
    for row in report.machines:
        lines.append(
            f"| {row['amount']:,} {row['need']} | {row['basis']} | {row['cpu_us']:.0f} | "
            f"{row['machines_like_this']} | {row['machines_16_core']} |"
        )
    return "\n".join(lines)


def sweep_table(report: Report) -> str:
    lines = [
        "| offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for p in report.sweep:
        p99 = f"{p['p99_ms']:.2f}"
        if p.get("p99_windows"):  # the judged point: the median of its windows, each shown
            p99 += f" (median of {', '.join(f'{w:.2f}' for w in p['p99_windows'])})"
        lines.append(
            f"| {p['offered']:,.0f} | {p['achieved']:,.0f} | {p['p50_ms']:.2f} | "
            f"{p['p90_ms']:.2f} | {p99} | {p['errors']:.0f} |"
        )
    return "\n".join(lines)


def plot(report: Report, out: Path) -> list[Path]:
    """Throughput and latency against offered load (the paced sweep)."""
    if not report.sweep:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [p["offered"] for p in report.sweep]
    written = []
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(offered, [p["achieved"] for p in report.sweep], marker="o", label="achieved")
    axis.plot(offered, offered, linestyle="--", color="grey", label="offered")
    trivial = report.measurements.get("trivial")
    if trivial is not None:
        axis.axhline(trivial.rate, color="tab:red", linestyle=":", label="trivial handler peak")
    axis.set_xlabel("offered verifications/s (one worker)")
    axis.set_ylabel("answered verifications/s")
    axis.set_title("Verification of a cached code: throughput")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    path = out / "throughput.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)

    figure, axis = plt.subplots(figsize=(6, 4))
    for key, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99")):
        axis.plot(offered, [p[key] for p in report.sweep], marker="o", label=label)
    axis.axhline(10.0, color="tab:red", linestyle=":", label="p99 target (10 ms)")
    axis.set_yscale("log")
    axis.set_xlabel("offered verifications/s (one worker)")
    axis.set_ylabel("latency, ms (log)")
    axis.set_title("Verification of a cached code: latency")
    axis.legend()
    axis.grid(alpha=0.3, which="both")
    figure.tight_layout()
    path = out / "latency.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)
    return written


def markdown(report: Report, plots: list[Path]) -> str:
    parts = [
        "# sealgate capacity report",
        "",
        f"Run {report.started} on {report.machine}; population {report.population:,} "
        "sealed proofs. One gateway worker; each floor measured in windows alternating "
        "with those of the gateway figure it is compared with, in the same run.",
        "",
        "## Ratios to the floors (docs/design.md §9)",
        "",
        ratio_table(report),
        "",
        "Sealing is judged by its cost ratio: CPU-µs per sealed proof over all the gateway's "
        "processes (worker, registry threads, signing process, audit writer) over the raw "
        "sign's CPU-µs per signature, one signature a proof, window by window. It does not "
        "depend on the core count; seals/s against the sign rate does (on a small machine the "
        "gateway's processes and the load generator share the cores the sign floor has alone) "
        "and is shown for information.",
        "",
        *peers_section(report),
        "## Measurements",
        "",
        measurement_table(report),
        "",
        "CPU-µs each: user + system CPU of the service's whole process tree (worker, "
        "signing and audit-writer children) over the measured window, per request "
        "(per seal for sealing); the mean rate of the windows, the median of their p50s and "
        "the worst of their p99s. Host steal: the share of the machine's CPU time its "
        "hypervisor gave to others during the windows (a busy neighbour slows everything).",
        "",
        "## Where the CPU goes",
        "",
        parts_table(report),
        "",
        "CPU-µs each by part of the gateway: the worker process (its event loop and all "
        "but its registry threads), the worker's registry threads (the SQLite writer, its "
        "checkpoints and readers), the signing process (SoftHSM2 signs inside it: a network "
        "HSM takes that work off the machine) and the audit writer. Two cores hold them all "
        "here, and the load generator too.",
        "",
        "## Machines a 25 M-person city needs",
        "",
        machines_table(report),
        "",
        "From CPU-µs per request, with machines planned to run at most 70 % busy and one "
        "worker per core; Redis, the database and the HSM are sized separately.",
        "",
        "## Verification at offered loads (paced)",
        "",
        sweep_table(report),
        "",
    ]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    if report.locust:
        parts += ["", "## The citywide mix (locust)", "", report.locust]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(parts) + "\n"


def peers_section(report: Report) -> list[str]:
    """Gateway ÷ the peers a user would pick instead, if they were measured (``--peers``)."""
    if not report.peer_ratios:
        return []
    return [
        "## Against the peers (docs/design.md §9)",
        "",
        ratio_table(report, report.peer_ratios),
        "",
        "Each peer measured in windows alternating with the gateway figure it is compared "
        "with, as the floors are: FastAPI on uvicorn (uvloop, httptools, one process, no "
        "access log) answering from a dict, against the cached-code figure; the same doing "
        "one redis.asyncio GET, against the Zipf mix; pyHanko's PKCS#11 CMS signer behind "
        "FastAPI with SQLite, sent the same batches as the gateway. Sealing is compared by "
        "seals/s and by CPU-µs per proof (the peer's over the gateway's).",
        "",
    ]


def write(report: Report, out: Path) -> Path:
    plots = plot(report, out)
    (out / "results.json").write_text(
        json.dumps(asdict(report), indent=1, ensure_ascii=False, default=str), encoding="utf-8"
    )
    path = out / "report.md"
    path.write_text(markdown(report, plots), encoding="utf-8")
    return path

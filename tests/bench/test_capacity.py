"""The capacity harness end to end, shrunk: every phase runs against real processes
(wrk, redis-server, SoftHSM2, `sealgate serve`) and the report is written. Correctness
only: the figures of a one-second run mean nothing and nothing here asserts on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sealgate.bench.capacity import Options, run_capacity
from sealgate.bench.sweep import SWEEP
from sealgate.bench.windows import Window, alternate, combined
from sealgate.hsm.softhsm import softhsm_available


def test_alternating_windows_cancel_a_drifting_host() -> None:
    # A host whose speed grows between windows: a gateway at 0.8 of its floor, seen
    # against the floor windows either side of each of its own, is 0.8 every time.
    speed = iter(range(1, 100))

    def floor() -> Window:
        return Window(rate=1000.0 * next(speed), cpu_us=10.0, count=100)

    def figure(index: int) -> Window:
        parts = {"worker": 15.0 * (index + 1), "signing process": 5.0 * (index + 1)}
        return Window(800.0 * next(speed), 20.0 * (index + 1), 100 * (index + 1), cpu_parts=parts)

    floors, figures, ratios = alternate(floor, figure, rounds=3)
    assert [w.rate for w in floors] == [1000.0, 3000.0, 5000.0, 7000.0]
    assert [w.rate for w in figures] == [1600.0, 3200.0, 4800.0]
    assert ratios == pytest.approx([0.8, 0.8, 0.8])
    joined = combined("verify_cached", "verify", figures)
    assert joined.rate == pytest.approx(3200.0)
    # CPU-µs over all requests, not the mean of the windows' figures
    assert joined.cpu_us == pytest.approx((20 * 100 + 40 * 200 + 60 * 300) / 600)
    assert joined.runs == [1600.0, 3200.0, 4800.0]
    # and so by part
    whole = (20 * 100 + 40 * 200 + 60 * 300) / 600
    assert joined.cpu_parts == pytest.approx(
        {"worker": whole * 0.75, "signing process": whole * 0.25}
    )


def test_one_stalled_window_moves_one_pair_only() -> None:
    # the hypervisor takes the CPU away during the second gateway window
    floor_rates = iter([1000.0, 1000.0, 1000.0, 1000.0])
    figure_rates = iter([800.0, 200.0, 800.0])
    _, _, ratios = alternate(
        lambda: Window(next(floor_rates), 1.0, 1), lambda _: Window(next(figure_rates), 1.0, 1), 3
    )
    assert ratios == pytest.approx([0.8, 0.2, 0.8])  # the report's figure: their median, 0.8


@pytest.mark.slow
def test_a_small_run_measures_every_phase_and_writes_the_report(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is required: run the suite with `make test` (it installs wrk)")
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    out = tmp_path / "capacity"
    options = Options(
        out=out,
        population=300,
        seconds=1.0,
        rounds=2,
        warmup=0.5,
        zipf_warmup=1.0,
        connections=8,
        batch=10,
        sweep_seconds=1.0,
        locust_seconds=4,
        locust_users=4,
        timestamps=True,
    )
    report_path = run_capacity(options)

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    measured = results["measurements"]
    assert set(measured) == {
        "trivial", "redis_get", "sign", "verify_cached", "verify_mix", "seal_batch",
        "seal_single", "seal_batch_untimestamped", "seal_batch_timestamped",
        "seal_single_untimestamped", "seal_single_timestamped",
    }  # fmt: skip
    windows = {
        "trivial": 3, "redis_get": 3, "sign": 3, "seal_single": 1,
        "seal_batch_untimestamped": 3, "seal_single_untimestamped": 1,
        "seal_single_timestamped": 1,
    }  # fmt: skip
    for name, m in measured.items():
        assert m["rate"] > 0, name
        # floor, gateway, floor, gateway, floor: two gateway windows between three of the
        # floor's; a measurement's rate is the mean of its windows'
        assert len(m["runs"]) == windows.get(name, 2), name
        assert m["rate"] == pytest.approx(sum(m["runs"]) / len(m["runs"])), name
        assert m["errors"] == 0, name  # every request answered as expected (2xx)
        assert m["cpu_us"] > 0, name
    # where a seal's CPU went: every part of the gateway did some of it, and the parts
    # add up to the whole
    batch_parts = measured["seal_batch"]["cpu_parts"]
    assert set(batch_parts) == {"worker", "registry threads", "signing process", "audit writer"}
    assert all(us > 0 for us in batch_parts.values()), batch_parts
    assert sum(batch_parts.values()) == pytest.approx(measured["seal_batch"]["cpu_us"])
    assert set(measured["trivial"]["cpu_parts"]) == {"worker"}  # a floor is one process
    # timestamped seals (every one answered 201, errors 0 above): the TSA's CPU counted
    for name in ("seal_batch_timestamped", "seal_single_timestamped"):
        assert measured[name]["cpu_parts"]["TSA"] > 0, name
    assert "TSA" not in measured["seal_batch_untimestamped"]["cpu_parts"]
    assert results["population"] == 300
    assert len((out / "codes.txt").read_text().split()) == 300
    assert [p["fraction"] for p in results["sweep"]] == list(SWEEP)
    # the judged point, half the rate, in as many windows as a ratio: its p99 their median
    [half] = [p for p in results["sweep"] if p["fraction"] == 0.5]
    assert len(half["p99_windows"]) == 2
    assert half["p99_ms"] == pytest.approx(sum(half["p99_windows"]) / 2)
    assert results["ratios"][-1]["pairs"] == half["p99_windows"]
    assert {row["need"] for row in results["machines"]} == {
        "verifications/s at peak", "verifications/s in a burst", "seals/s online",
        "seals/s for a one-night re-issue",
    }  # fmt: skip
    assert all(row["machines_like_this"] >= 1 for row in results["machines"])
    assert len(results["ratios"]) == 6
    # sealing is judged by its cost: CPU-µs per proof over the raw sign's per signature,
    # window by window; seals/s against the sign rate is for information
    rows = {row["name"]: row for row in results["ratios"]}
    seal_cpu, sign_cpu = measured["seal_batch"]["cpu_runs"], measured["sign"]["cpu_runs"]
    costs = [g / ((a + b) / 2) for g, a, b in zip(seal_cpu, sign_cpu, sign_cpu[1:], strict=False)]
    assert rows["seal_cost"]["pairs"] == pytest.approx(costs)
    assert rows["seal_cost"]["ratio"] == pytest.approx(sum(costs) / 2)
    assert (rows["seal_cost"]["target"], rows["seal_cost"]["at_most"]) == (2.5, True)
    assert (rows["seal_batch"]["target"], rows["seal_batch"]["pass"]) == (None, None)
    assert "peer_dict" not in measured and results["peer_ratios"] == []  # no --peers
    # each paired ratio is the median of its gateway windows against the floor windows
    # either side of each
    floors = {"verify_cached": "trivial", "verify_mix": "redis_get", "seal_batch": "sign"}
    for name, floor in floors.items():
        figure, base = measured[name]["runs"], measured[floor]["runs"]
        expected = [g / ((a + b) / 2) for g, a, b in zip(figure, base, base[1:], strict=False)]
        assert measured[name]["pair_ratios"] == pytest.approx(expected), name
        row = next(r for r in results["ratios"] if r.get("pairs") == measured[name]["pair_ratios"])
        assert row["ratio"] == pytest.approx(sum(expected) / 2), name  # the median of two
    report = report_path.read_text(encoding="utf-8")
    assert "verify of a cached code / trivial handler" in report
    assert "(windows: " in report  # every window's rate
    assert "## Where the CPU goes" in report
    assert "Timestamps (CAdES-B-T, a development TSA on this machine): batches:" in report
    assert "| seal, batches of 10 |" in report
    assert "| /v1/verify/{code} |" in report or "/v1/verify/{code}" in report  # locust table
    for plot in ("throughput.png", "latency.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"]({plot})" in report

    # a second run reuses the home and the population: nothing is seeded again
    again = Options(out=out, population=300, seconds=0.5, rounds=1, warmup=0.0, zipf_warmup=0.5,
                    connections=4, batch=5, sweep_seconds=0.5)  # fmt: skip
    run_capacity(again)
    assert len((out / "codes.txt").read_text().split()) == 300

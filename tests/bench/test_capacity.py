"""The capacity harness end to end, shrunk: every phase runs against real processes
(wrk, redis-server, SoftHSM2, `sealgate serve`) and the report is written. Correctness
only: the figures of a one-second run mean nothing and nothing here asserts on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.capacity import SWEEP, Options, run_capacity
from hsm.softhsm import softhsm_available


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
        warmup=0.5,
        connections=8,
        batch=10,
        sweep_seconds=1.0,
        locust_seconds=4,
        locust_users=4,
    )
    report_path = run_capacity(options)

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    measured = results["measurements"]
    assert set(measured) == {
        "trivial", "redis_get", "sign", "verify_cached", "verify_mix", "seal_batch",
        "seal_single",
    }  # fmt: skip
    for name, m in measured.items():
        assert m["rate"] > 0, name
        # each floor ran before and after its gateway figure; its rate is their mean
        floor = name in {"trivial", "redis_get", "sign"}
        assert len(m["runs"]) == (2 if floor else 0), name
        if floor:
            assert m["rate"] == pytest.approx(sum(m["runs"]) / 2), name
        assert m["errors"] == 0, name  # every request answered as expected (2xx)
        assert m["cpu_us"] > 0, name
    assert results["population"] == 300
    assert len((out / "codes.txt").read_text().split()) == 300
    assert [p["fraction"] for p in results["sweep"]] == list(SWEEP)
    assert {row["need"] for row in results["machines"]} == {
        "verifications/s at peak", "verifications/s in a burst", "seals/s online",
        "seals/s for a one-night re-issue",
    }  # fmt: skip
    assert all(row["machines_like_this"] >= 1 for row in results["machines"])
    assert len(results["ratios"]) == 5

    report = report_path.read_text(encoding="utf-8")
    assert "verify of a cached code / trivial handler" in report
    assert "(before " in report and ", after " in report  # the floors' two runs
    assert "| /v1/verify/{code} |" in report or "/v1/verify/{code}" in report  # locust table
    for plot in ("throughput.png", "latency.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"]({plot})" in report

    # a second run reuses the home and the population: nothing is seeded again
    again = Options(out=out, population=300, seconds=0.5, warmup=0.0, connections=4, batch=5,
                    sweep_seconds=0.5)  # fmt: skip
    run_capacity(again)
    assert len((out / "codes.txt").read_text().split()) == 300

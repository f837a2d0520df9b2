"""``sealgate bench capacity --target URL``: a gateway started separately, measured from
outside, read-only unless told. Correctness only: one-second windows mean nothing, and
nothing here asserts on a rate beyond its being measured."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sealgate.gateway.provision import init_home
from sealgate.hsm.softhsm import softhsm_available
from sealgate.verify.directory import Role
from tests.gateway.conftest import proof_request
from tests.gateway.serving import free_port, serving

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "sealgate.gateway.cli", "bench", "capacity"]


def proofs(home: Path) -> int:
    with sqlite3.connect(home / "registry.db") as conn:
        count: int = conn.execute("SELECT count(*) FROM proofs").fetchone()[0]
    return count


def test_a_running_gateway_measured_from_outside(tmp_path: Path) -> None:
    if shutil.which("wrk") is None or not softhsm_available():
        pytest.fail("wrk and SoftHSM2 are required: run the suite with `make test`")
    settings, credentials = init_home(tmp_path / "home", demo=True)
    assert credentials is not None
    tokens = {client.role: token for client, token in credentials.clients}
    (tmp_path / "verifier").write_text(tokens[Role.VERIFIER] + "\n")
    (tmp_path / "signer").write_text(tokens[Role.SIGNER])
    seal = credentials.seals[0].seal_id
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(settings.home, port):
        sealed = requests.post(
            f"{url}/v1/certificates",
            json={"items": [proof_request(seal) for _ in range(20)]},
            headers={"Authorization": f"Bearer {tokens[Role.SIGNER]}"},
            timeout=30,
        )
        assert sealed.status_code == 201
        codes = tmp_path / "codes.txt"
        codes.write_text("".join(item["code"] + "\n" for item in sealed.json()["items"]))
        before = proofs(settings.home)
        quick = ["--seconds", "1", "--rounds", "1", "--connections", "8"]

        out = tmp_path / "read-only"
        run = subprocess.run(
            [*CLI, "--target", url, "--token-file", str(tmp_path / "verifier"),
             "--codes", str(codes), "--out", str(out), *quick],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        results = json.loads((out / "target-results.json").read_text())
        figures = {f["name"]: f for f in results["figures"]}
        assert set(figures) == {"verify_one", "verify_mix"}
        assert all(f["rate"] > 0 and f["errors"] == 0 for f in figures.values())
        assert len(results["sweep"]) == 4
        assert results["readiness"]["ready"] is True
        assert tokens[Role.VERIFIER] not in json.dumps(results)  # never in the report
        assert "verify, one code" in (out / "target-report.md").read_text()
        assert proofs(settings.home) == before  # read-only: nothing sealed

        out = tmp_path / "sealing"
        run = subprocess.run(
            [*CLI, "--target", url, "--token-file", str(tmp_path / "verifier"),
             "--allow-sealing", "--seal-token-file", str(tmp_path / "signer"), "--seal", seal,
             "--batch", "10", "--out", str(out), *quick],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        figures = {
            f["name"]: f for f in json.loads((out / "target-results.json").read_text())["figures"]
        }
        assert figures["seal_batch"]["rate"] > 0
        assert proofs(settings.home) == before + 1000 + 20 * 10  # its codes, then its batches

        # refused clearly, and nothing measured: no codes, a token that is not a verifier's
        for extra, message in [
            ([], "give --codes FILE"),
            (["--codes", str(codes), "--token-file", str(tmp_path / "signer")], "answered 403"),
        ]:
            run = subprocess.run(
                [*CLI, "--target", url, "--token-file", str(tmp_path / "verifier"),
                 "--out", str(tmp_path / "refused"), *quick, *extra],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert run.returncode != 0
            assert message in run.stderr, run.stderr
            assert not (tmp_path / "refused" / "target-results.json").exists()

"""``sealgate audit query``: the trails of several instances merged in time order, filtered
by code, client and time, as lines or CSV; and a store of the old form read back as the
exact text its hashes covered."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from sealgate.gateway.audit_store import append_now, open_store, read_records
from sealgate.verify.audit import AuditEvent, TrailBroken, verify_trail
from sealgate.verify.code import parse_code
from tests.gateway.test_audit import SEALGATE

CODE = "430900-ZDXE31-DD2417-Z7GDVP"
OTHER = "430900-7K3M9Q-ZX4T2B-H8WDQ"
BASE = 1_796_600_000.0  # 2026-12-07T07:33:20+08:00


def query(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(tmp_path), "audit", "query", *options],
        capture_output=True,
        text=True,
        check=False,
    )


def event(client: str, code: str | None, at: float, n: int) -> AuditEvent:
    return AuditEvent("verify", client, "verifier", "loan", code, "200", f"r{n}", at, {"n": n})


def test_the_trails_of_two_instances_merge_in_time_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    # as typed: the second instance's record has the code in lower case, without hyphens
    typed = CODE.replace("-", "").lower()
    append_now(one, [event("C-bank", CODE, BASE + t, t) for t in (0, 20, 40)])
    append_now(two, [event("C-bank", typed, BASE + 10, 10), event("C-other", OTHER, BASE + 30, 30)])
    both = ["--trail", str(one), "--trail", str(two)]
    lines = query(tmp_path, *both).stdout.splitlines()
    assert [line.split("\t")[9] for line in lines] == ["r0", "r10", "r20", "r30", "r40"]
    assert lines[0].split("\t")[:3] == ["2026-12-07T07:33:20.000+08:00", str(one), "1"]
    found = query(tmp_path, *both, "--code", CODE, "--format", "csv")
    assert found.returncode == 0, found.stderr
    table = list(csv.DictReader(io.StringIO(found.stdout)))
    assert [row["request"] for row in table] == ["r0", "r10", "r20", "r40"]
    assert {parse_code(row["code"]).compact for row in table} == {parse_code(CODE).compact}
    assert json.loads(table[1]["detail"]) == {"n": 10}
    # from 10 s in (China time), to 30 s in (UTC): r10 and r20; C-other's r30 is not the bank's
    window = query(tmp_path, *both, "--client", "C-bank", "--from", "2026-12-07T07:33:30",
                   "--to", "2026-12-06T23:33:50Z")  # fmt: skip
    assert [line.split("\t")[9] for line in window.stdout.splitlines()] == ["r10", "r20"]
    refused = query(tmp_path, *both, "--code", "11010519491231002X")
    assert refused.returncode == 1 and "not a well-formed verification code" in refused.stderr


def test_a_store_of_the_old_form_is_rewritten_once_to_the_text_its_hashes_covered(
    tmp_path: Path,
) -> None:
    store = tmp_path / "audit.db"
    append_now(store, [event("C-1", CODE, BASE + n, n) for n in range(3)])
    conn = sqlite3.connect(store)
    # as the store wrote details before: json.dumps' spaces, and one duplicated key
    conn.execute("UPDATE audit SET detail = '{\"n\": 1}' WHERE seq = 2")
    conn.execute('UPDATE audit SET detail = \'{"n": 9, "n": 2}\' WHERE seq = 3')
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    open_store(store).close()
    stored = [record.stored_detail for record in read_records(store)]
    assert stored == ['{"n":0}', '{"n":1}', '{"n": 9, "n": 2}']  # the doubled one left as it was
    with pytest.raises(TrailBroken, match="record 3: altered"):
        verify_trail(read_records(store), b"")

"""``sealgate matter add|list|remove``: the city's table of matters, each change audited
ahead and after by its named operator and signed at once; bad input refused with nothing
stored or recorded; a matter granted to a client not removable."""

from __future__ import annotations

import json

import pytest

from tests.gateway.conftest import Demo
from tests.gateway.test_audit import rows
from tests.gateway.test_cli import run


def trail(demo: Demo) -> list[tuple[str, str, str, dict[str, str]]]:
    """The trail's matter records: action, client, result, detail."""
    return [
        (r[1], r[2], r[6], json.loads(r[7]))
        for r in rows(demo.settings.audit_path, "action LIKE 'matter-%'")
    ]


def test_matters_added_listed_and_removed_each_audited(demo: Demo) -> None:
    listed = run("matter", "list", home=demo.home)
    assert listed.returncode == 0, listed.stderr
    assert "demo\t演示事项 (demo)\t无犯罪记录证明\n" in listed.stdout  # the demo's seed
    added = run("matter", "add", "bank-loan", "--name", "个人住房贷款审批",
                "--content", "无犯罪记录证明=结论,用途", "--content", "婚姻状况证明",
                "--operator", "li.wei", home=demo.home)  # fmt: skip
    assert added.returncode == 0, added.stderr
    shown = "婚姻状况证明;无犯罪记录证明=用途,结论"
    assert added.stdout == f"matter\tbank-loan\t{shown}\n"
    assert f"bank-loan\t个人住房贷款审批\t{shown}\n" in run("matter", "list", home=demo.home).stdout
    removed = run("matter", "remove", "bank-loan", "--operator", "li.wei", home=demo.home)
    assert removed.returncode == 0, removed.stderr
    assert "bank-loan" not in run("matter", "list", home=demo.home).stdout
    records = [r for r in trail(demo) if r[3]["subject"] == "bank-loan"]
    assert [(a, c, result) for a, c, result, _ in records] == [
        ("matter-add", "cli:li.wei", "intent"),
        ("matter-add", "cli:li.wei", "ok"),
        ("matter-remove", "cli:li.wei", "intent"),
        ("matter-remove", "cli:li.wei", "ok"),
    ]
    assert records[1][3]["contents"] == shown
    # each command signed its records at once
    checked = run("audit", "verify", "--max-unsigned-records", "0", home=demo.home)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["matter", "add", "x", "--name", " "], "name is empty"),
        (["matter", "add", "x\ty", "--name", "n"], "control character"),
        (["matter", "add", "x" * 65, "--name", "n"], "longer than 64"),
        (["matter", "add", "x", "--name", "n", "--content", "=a"], "proof type is empty"),
        (["matter", "add", "x", "--name", "n", "--content", "t=a,a"], "named twice"),
        (
            [
                "matter",
                "add",
                "x",
                "--name",
                "n",
                "--content",
                "t",
                "--content",
                "u=a",
                "--content",
                "t=a",
            ],
            "granted twice",
        ),
        (["matter", "add", "x", "--name", "n", "--content", "t=a,"], "field name is empty"),
        (["matter", "add", "demo", "--name", "n"], "already exists"),
        (["matter", "remove", "nothing"], "no matter nothing"),
        (["matter", "remove", "demo"], "is granted to C-"),  # the demo verifier's
    ],
)
def test_bad_input_is_refused_with_nothing_stored(
    demo: Demo, args: list[str], message: str
) -> None:
    before, recorded = run("matter", "list", home=demo.home).stdout, trail(demo)
    result = run(*args, home=demo.home)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert run("matter", "list", home=demo.home).stdout == before
    assert trail(demo) == recorded  # refused before its intent was recorded


def test_the_operator_is_required(demo: Demo) -> None:
    for args in (["matter", "add", "y", "--name", "n"], ["matter", "remove", "demo"]):
        result = run(*args, "--operator", "", home=demo.home)
        assert result.returncode != 0
    assert "y\t" not in run("matter", "list", home=demo.home).stdout

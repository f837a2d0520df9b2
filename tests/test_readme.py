"""The README's walkthrough, run from the README itself against real gateways, both
ways it offers (after `make run`; a home of one's own): tests/readme_walkthrough.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.readme_walkthrough import README, ROOT, blocks

pytestmark = [pytest.mark.slow, pytest.mark.processes]

HOLDER_ID = "11010519491231002X"
CODE = re.compile(r"^\d{6}(-[0-9A-Z]{6}){3}$")


def test_the_readme_marks_its_walkthrough() -> None:
    found = blocks(README.read_text("utf-8"))
    assert set(found) == {"", "own home"}
    assert "make run" not in found[""]  # the walkthrough runs in a second shell


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    if subprocess.run(["make", "-C", str(ROOT), "-q", ".venv/.installed"]).returncode != 0:
        pytest.fail("the venv is not up to date: run `make setup` first", pytrace=False)
    work = tmp_path_factory.mktemp("readme")
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.readme_walkthrough", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    results: dict[str, dict[str, object]] = json.loads(run.stdout)
    return results


@pytest.mark.parametrize("way", ["make run", "own home"])
def test_the_walkthrough_works_verbatim(walked: dict[str, dict[str, object]], way: str) -> None:
    result = walked[way]
    stdout, stderr = str(result["stdout"]), str(result["stderr"])
    assert result["returncode"] == 0, stderr
    lines = stdout.splitlines()
    code = lines[0]
    assert CODE.match(code), lines[0]
    # every answer ends with a newline: each JSON answer is a line of its own
    answers = [json.loads(line) for line in lines if line.startswith("{")]
    assert [a.get("status") for a in answers] == [
        "valid",  # checked
        "valid",  # checked with the content its purpose's matter reads
        404,  # a code no proof has
        "pledged",  # the pledge's answer
        "pledged",  # checked again
        "valid",  # released
        "valid",  # the history
        None,  # reuse: {"items": [...]}
    ]
    assert answers[2]["code"] == "unknown-code"
    assert answers[0]["holder"] == {"kind": "person", "name": "张*", "id": "1101**********002X"}
    assert "content" not in answers[0]
    assert answers[1]["content"] == {"结论": "经查询，未发现有犯罪记录"}
    history = answers[6]["history"]
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [
        ("valid", "pledged", "贷款质押"),
        ("pledged", "valid", "贷款结清，解除质押"),
    ]
    assert [p["code"] for p in answers[7]["items"]] == [code]
    assert "CMS Verification successful" in stderr
    assert any(line.startswith(f"VALID\t{code}\t") for line in lines)  # verify-file
    assert lines[-1] == "OK: valid, and the holder matches"  # examples/bank_check.py
    # masked everywhere: OpenSSL's -out /dev/null kept the proof's content unprinted
    assert HOLDER_ID not in stdout + stderr


def _commands(text: str) -> list[str]:
    """The command lines of a document's ``sh`` blocks, end-of-line comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)\n *```", text, re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+# .*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def test_the_chinese_quick_start_runs_the_same_commands() -> None:
    """docs/zh/快速入门.md explains the walkthrough in Chinese; its commands are the
    README's (tested above), so it cannot drift either."""
    readme = set(_commands(README.read_text("utf-8")))
    quick_start = _commands((ROOT / "docs" / "zh" / "快速入门.md").read_text("utf-8"))
    missing = [c for c in quick_start if c not in readme and not c.startswith(("pip", "python"))]
    assert not missing
    walkthrough = _commands("```sh\n" + blocks(README.read_text("utf-8"))[""] + "\n```")
    assert set(walkthrough) <= set(quick_start)

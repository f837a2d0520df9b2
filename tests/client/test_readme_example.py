"""The client examples of the README (its ``<!-- client example -->`` block) and of the
Chinese quick start, run as written against a real gateway, with the names they say
they expect."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from sealgate.verify.directory import Role
from tests.client.conftest import Served
from tests.readme_walkthrough import README, ROOT

pytestmark = pytest.mark.processes

_BLOCK = re.compile(r"<!-- client example -->\n```python\n(?P<body>.*?)\n```", re.S)


def test_the_readme_client_example_runs(served: Served) -> None:
    match = _BLOCK.search(README.read_text("utf-8"))
    assert match is not None
    source = match["body"].replace("http://127.0.0.1:8080", served.url)
    names = {
        "SIGNER": served.token(Role.SIGNER),
        "ISSUER": served.token(Role.ISSUER),
        "VERIFIER": served.token(Role.VERIFIER),
        "SEAL": served.demo.proof_seal,
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), names)  # noqa: S102 - the README's own code
    code, status, unit = printed.getvalue().split()
    assert re.fullmatch(r"\d{6}(-[0-9A-Z]{6}){3}", code)
    assert status == "pledged" and unit == "益阳市公安局"


def test_the_chinese_quick_start_client_example_runs(served: Served) -> None:
    text = (ROOT / "docs" / "zh" / "快速入门.md").read_text("utf-8")
    [source] = re.findall(r"```python\n(.*?)\n```", text, re.S)
    names = {"VERIFIER": served.token(Role.VERIFIER)}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(  # noqa: S102 - the quick start's own code
            compile(source.replace("http://127.0.0.1:8080", served.url), "zh", "exec"), names
        )
    assert printed.getvalue() == "查无此证明\n"  # its code is well-formed, and no proof's

#!/usr/bin/env python3
"""Write or check requirements.lock, the hashed pins of every Python package sealgate installs.

``lock.py write`` resolves pyproject.toml (runtime, ``test`` and ``bench`` extras) and
requirements-tools.in with ``uv pip compile --universal --generate-hashes`` and records a
digest of those inputs in the lock's first line. ``lock.py check`` (run by ``make`` before
it installs anything) recomputes the digest and fails, saying to run ``make lock``, when an
input changed after the lock was written. Standard library only: it runs before the venv.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
TOOLS = ROOT / "requirements-tools.in"
LOCK = ROOT / "requirements.lock"
EXTRAS = ("test", "bench")
PYTHON = "3.11"  # the oldest Python sealgate supports; markers cover newer ones
DIGEST_PREFIX = "# inputs-sha256: "


def inputs_digest() -> str:
    """A digest of what the lock is resolved from: only the parts that change the result."""
    project = tomllib.loads(PYPROJECT.read_text("utf-8"))
    tools = [
        line.strip()
        for line in TOOLS.read_text("utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    described = {
        "build-system": project["build-system"].get("requires", []),
        "requires-python": project["project"].get("requires-python"),
        "dependencies": project["project"].get("dependencies", []),
        "extras": {e: project["project"]["optional-dependencies"][e] for e in EXTRAS},
        "tools": tools,
        "python": PYTHON,
    }
    blob = json.dumps(described, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def write(uv: str) -> None:
    command = [
        uv, "pip", "compile",
        str(PYPROJECT.relative_to(ROOT)), str(TOOLS.relative_to(ROOT)),
        *(arg for extra in EXTRAS for arg in ("--extra", extra)),
        "--universal", "--python-version", PYTHON, "--generate-hashes",
        "--no-header", "--no-annotate",
    ]  # fmt: skip
    resolved = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    header = (
        f"{DIGEST_PREFIX}{inputs_digest()}\n"
        "# Written by `make lock` (scripts/lock.py) from pyproject.toml and\n"
        "# requirements-tools.in; do not edit. `make` installs exactly these with\n"
        "# `pip install --require-hashes`.\n"
    )
    text = header + resolved.stdout
    if not LOCK.exists() or LOCK.read_text("utf-8") != text:  # unchanged: keep the venv
        LOCK.write_text(text, "utf-8")


def check() -> int:
    try:
        first = LOCK.read_text("utf-8").splitlines()[0]
    except (FileNotFoundError, IndexError):
        first = ""
    recorded = first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None
    if recorded != inputs_digest():
        print(
            f"{LOCK.relative_to(ROOT)} does not match pyproject.toml / requirements-tools.in:"
            " run `make lock`, then `make test`, and commit both files.",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    if argv[:1] == ["write"] and len(argv) == 2:
        write(argv[1])
        return 0
    print("usage: lock.py check | lock.py write UV", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The lock file: what the venv holds, and the check that tells a stale lock apart."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _locked() -> dict[str, str]:
    """The pins of the lock whose markers hold for this interpreter."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text("utf-8").splitlines():
        match = PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def test_every_locked_line_has_hashes() -> None:
    lines = LOCK.read_text("utf-8").splitlines()
    pinned = [n for n, line in enumerate(lines) if PIN.match(line)]
    assert len(pinned) > 50
    for n in pinned:
        assert lines[n + 1].strip().startswith("--hash=sha256:"), lines[n]


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    installed.pop("sealgate")
    installed.pop("pip", None)  # the venv's own installer, not a dependency
    assert installed == _locked()


def _checker_copy(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock.py", tmp_path / "scripts" / "lock.py")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name in ("requirements.lock", "requirements-tools.in"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "lock.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_lock_matches_its_inputs(tmp_path: Path) -> None:
    result = _check(_checker_copy(tmp_path))
    assert result.returncode == 0, result.stderr


def test_a_range_changed_without_make_lock_is_refused(tmp_path: Path) -> None:
    root = _checker_copy(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    assert '"msgpack>=1.0"' in text
    pyproject.write_text(text.replace('"msgpack>=1.0"', '"msgpack>=1.0,<2"'), "utf-8")
    result = _check(root)
    assert result.returncode == 1
    assert "run `make lock`" in result.stderr


def test_a_change_outside_the_dependencies_needs_no_new_lock(tmp_path: Path) -> None:
    root = _checker_copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text("utf-8") + "\n# a comment\n", "utf-8")
    assert _check(root).returncode == 0

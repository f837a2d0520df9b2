"""sealgate-client, the client-only distribution: built from packaging/sealgate-client,
installed into a fresh venv with only its own dependencies, and used there against a
real gateway."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sealgate.client import Client
from sealgate.verify.directory import Role
from tests.client.conftest import Served
from tests.client.proofs import proof

pytestmark = [pytest.mark.slow, pytest.mark.processes]

ROOT = Path(__file__).resolve().parents[2]
# What the gateway needs and a client must not: none may be installed, none imported.
# chinese_calendar (verify/workdays.py) and cbor2 (crypto/qr_payload.py) among them: the
# client reads requests' words from verify/request_kinds.py, and QR codes only as text.
SERVER_ONLY = ("aiohttp", "uvloop", "pkcs11", "redis", "asyncpg", "psycopg", "msgpack",
               "prometheus_client", "hiredis", "multidict", "chinese_calendar",
               "cbor2")  # fmt: skip

SCRIPT = """
import importlib.util, sys
import sealgate.client
from sealgate.client import Client, InvalidCode, verify_offline

server_only = {server_only!r}
assert not [m for m in server_only if importlib.util.find_spec(m) is not None], "installed"
with Client({url!r}, token={token!r}) as bank:
    answer = bank.verify({code!r}, purpose="demo")
    document = bank.document({code!r}, purpose="demo")
    proof = verify_offline(document, bank.trust())
    checked = bank.public_check({code!r}.lower())  # no token: the public check
    typo = {code!r}[:-1] + ("1" if {code!r}[-1] != "1" else "2")
    try:
        bank.verify(typo, purpose="demo")
        raise SystemExit("a mistyped code was not caught")
    except InvalidCode:
        pass
assert not [m for m in server_only if m in sys.modules], "imported"
print(answer.status.value, proof.code == answer.code, checked.valid)
"""


def test_the_client_distribution_needs_none_of_the_gateways_dependencies(
    served: Served, tmp_path: Path
) -> None:
    source = tmp_path / "source"  # built from a copy: the links followed, the tree left clean
    shutil.copytree(ROOT / "packaging" / "sealgate-client", source, symlinks=False)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(source)],
        check=True,
    )  # fmt: skip
    [wheel] = wheels.glob("sealgate_client-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    subprocess.run([python, "-c", "import sealgate.client"], check=True)

    with Client(served.url, token=served.token(Role.SIGNER)) as signer:
        code = signer.seal(proof(served.demo.proof_seal)).code
    script = SCRIPT.format(
        server_only=SERVER_ONLY, url=served.url, token=served.token(Role.VERIFIER), code=code
    )
    run = subprocess.run(
        [python, "-c", textwrap.dedent(script)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["valid", "True", "True"]

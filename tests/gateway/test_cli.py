"""The `sealgate` command line, run as a user runs it: a real process."""

from __future__ import annotations

import base64
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.config_file import load_settings
from sealgate.verify.directory import Role
from tests.gateway.conftest import proof_request

SEALGATE = [sys.executable, "-m", "sealgate.gateway.cli"]

pytestmark = pytest.mark.processes  # every test runs the CLI as a program


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["--home", str(home)] if home is not None else []
    return subprocess.run(
        [*SEALGATE, *prefix, *with_operator(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CHANGES = {
    ("seal", "create"),
    ("seal", "rotate"),
    ("client", "add"),
    ("client", "remove"),
    ("client", "set-limits"),
    ("client", "set-grants"),
    ("trust", "publish"),
    ("matter", "add"),
    ("matter", "remove"),
}


def with_operator(args: Sequence[str]) -> list[str]:
    """A provisioning command names its operator (required): the tests' is ``ops-1``,
    unless the command names one itself."""
    if tuple(args[:2]) not in CHANGES or "--operator" in args:
        return list(args)
    return [*args, "--operator", "ops-1"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "home"


@pytest.fixture(scope="module")
def init_lines(home: Path) -> list[list[str]]:
    result = run("init", "--demo", home=home)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def root_pin(init_lines: list[list[str]], home: Path) -> Path:
    """The demo's root PIN, printed once, in a file beside (not in) the home."""
    path = home.parent / "root-pin"
    path.write_text(init_lines[0][1] + "\n")
    return path


@pytest.fixture(scope="module")
def demo_lines(init_lines: list[list[str]], root_pin: Path) -> list[list[str]]:
    """The seals' and clients' lines."""
    return init_lines[1:]


def test_init_demo_prints_the_root_pin_once_and_keeps_it_nowhere(
    init_lines: list[list[str]], home: Path
) -> None:
    (label, pin), *_ = init_lines
    assert label == "root-pin" and len(pin) == 32
    assert not [p for p in home.rglob("*") if p.is_file() and pin.encode() in p.read_bytes()]
    assert not (home / "secrets" / "token-so-pin").exists()
    assert "root_token_label" in (home / "config.toml").read_text()


def test_init_demo_prints_seals_and_clients_as_tab_separated_lines(
    demo_lines: list[list[str]], home: Path
) -> None:
    assert [line[0] for line in demo_lines] == [
        "seal",
        "seal",
        "signer",
        "issuer",
        "verifier",
        "admin",
        "portal",
    ]
    assert all(len(line) == 3 for line in demo_lines)
    assert {line[2] for line in demo_lines[:2]} == {"proof", "verification"}
    assert all(line[2].startswith("sgt_") for line in demo_lines[2:])
    assert (home / "root.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (home / "secrets").stat().st_mode & 0o077 == 0
    # tokens are shown once and stored only as digests
    registry = (home / "registry.db").read_bytes()
    assert all(line[2].encode() not in registry for line in demo_lines[2:])


def test_init_refuses_an_existing_home(
    demo_lines: list[list[str]], home: Path, root_pin: Path
) -> None:
    result = run("init", "--root-pin-file", str(root_pin), home=home)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "already a sealgate home" in result.stderr
    assert "Traceback" not in result.stderr


def test_seal_create_list_and_client_add(
    demo_lines: list[list[str]], home: Path, root_pin: Path
) -> None:
    refused = run(
        "seal", "create", "--unit-name", "益阳市民政局", "--unit-code", "11430900006151330B",
        "--kind", "proof", home=home,
    )  # fmt: skip
    assert refused.returncode == 1 and "--root-pin-file" in refused.stderr
    wrong = home.parent / "wrong-pin"
    wrong.write_text("not the root's pin\n")
    refused = run(
        "seal", "create", "--unit-name", "益阳市民政局", "--unit-code", "11430900006151330B",
        "--kind", "proof", "--root-pin-file", str(wrong), home=home,
    )  # fmt: skip
    assert refused.returncode == 1 and "PinIncorrect" in refused.stderr
    created = run(
        "seal",
        "create",
        "--root-pin-file",
        str(root_pin),
        "--unit-name",
        "益阳市民政局",
        "--unit-code",
        "11430900006151330B",
        "--kind",
        "proof",
        home=home,
    )
    assert created.returncode == 0, created.stderr
    kind, seal_id, seal_kind = created.stdout.strip().split("\t")
    assert (kind, seal_kind) == ("seal", "proof")
    listed = run("seal", "list", home=home)
    assert any(
        line.startswith(f"{seal_id}\tproof\t益阳市民政局") for line in listed.stdout.splitlines()
    )
    # a purpose names a matter of the city's table (docs/design.md §17)
    added = run(
        "client", "add", "--name", "bank", "--role", "verifier", "--purpose", "loan", home=home
    )
    assert added.returncode == 1 and "no matter loan" in added.stderr
    assert run("matter", "add", "loan", "--name", "贷款审批", home=home).returncode == 0
    added = run(
        "client", "add", "--name", "bank", "--role", "verifier", "--purpose", "loan", home=home
    )
    assert added.returncode == 0, added.stderr
    role, client_id, token = added.stdout.strip().split("\t")
    assert role == "verifier" and token.startswith("sgt_")
    assert client_id in run("client", "list", home=home).stdout
    assert token not in run("client", "list", home=home).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["seal", "create", "--unit-name", "x", "--unit-code", "bad", "--kind", "proof"],
            "--unit-code",
        ),
        (["seal", "rotate", "SEAL-NOSUCHSEAL"], "no seal"),
        (
            ["client", "add", "--name", "x", "--role", "signer", "--seal", "SEAL-NOSUCHSEAL"],
            "unknown seal",
        ),
        (["client", "add", "--name", "x", "--role", "issuer"], "office"),
        (["verify-file", "/no/such/file"], "cannot read"),
    ],
)
def test_errors_are_one_line_without_traceback(
    demo_lines: list[list[str]], home: Path, root_pin: Path, args: list[str], message: str
) -> None:
    if args[0] == "seal":
        args = [*args, "--root-pin-file", str(root_pin)]
    result = run(*args, home=home)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_commands_on_a_missing_home_fail_clearly(tmp_path: Path) -> None:
    result = run("seal", "list", home=tmp_path / "nothing")
    assert result.returncode == 1
    assert "not a sealgate home" in result.stderr


def test_verify_file_rejects_garbage(
    demo_lines: list[list[str]], home: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.der"
    garbage.write_bytes(b"\x30\x03\x02\x01\x01")
    result = run("verify-file", str(garbage), home=home)
    assert result.returncode == 1
    assert result.stderr.startswith("INVALID: MalformedProof")


async def test_rotation_seals_new_proofs_with_the_new_key_and_old_ones_still_verify(
    demo_lines: list[list[str]], home: Path, root_pin: Path, tmp_path: Path, gateway_client: Any
) -> None:
    seal_id = demo_lines[0][1]
    signer = {"Authorization": f"Bearer {demo_lines[2][2]}"}
    settings = load_settings(home)

    async def seal_one(client: TestClient[Any, Any]) -> bytes:
        response = await client.post(
            "/v1/certificates", json=proof_request(seal_id), headers=signer
        )
        assert response.status == 201
        return base64.b64decode((await response.json())["document"])

    client = await gateway_client(create_app(settings))
    before = await seal_one(client)
    await client.close()

    rotated = run("seal", "rotate", seal_id, "--root-pin-file", str(root_pin), home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == f"seal\t{seal_id}\tv2"

    client = await gateway_client(create_app(settings))
    after = await seal_one(client)
    trust = await (await client.get("/v1/trust")).json()
    listed = trust["document"]["seals"]
    versions = {(s["version"], s["state"]) for s in listed if s["seal_id"] == seal_id}
    assert versions == {(1, "retired"), (2, "active")}
    await client.close()

    for name, der in (("before", before), ("after", after)):
        path = tmp_path / f"{name}.der"
        path.write_bytes(der)
        assert run("verify-file", str(path), home=home).returncode == 0
    from sealgate.crypto.verification import TrustList, verify_proof

    roots = TrustList.from_pem((home / "root.pem").read_bytes())
    assert verify_proof(before, roots).seal_id == verify_proof(after, roots).seal_id == seal_id
    assert verify_proof(before, roots).unit_code == verify_proof(after, roots).unit_code
    # a different key signed each: the embedded seal certificates differ
    assert verify_proof(before, roots).seal_certificate_der != (
        verify_proof(after, roots).seal_certificate_der
    )
    assert Role.SIGNER.value == demo_lines[2][0]


def test_issuer_office_must_be_a_credit_code(demo_lines: list[list[str]], home: Path) -> None:
    result = run("client", "add", "--name", "x", "--role", "issuer", "--office", "", home=home)
    assert result.returncode == 1
    assert "--office" in result.stderr


def test_os_errors_are_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = run("seal", "list", home=not_a_dir)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_on_a_taken_port_fails_with_one_line(demo_lines: list[list[str]], home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), home=home)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "sealgate: error:" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "option", [["--rounds", "0"], ["--seconds", "0"], ["--population", "0"], ["--batch", "-1"]]
)
def test_bench_capacity_refuses_a_nonsense_option_before_starting_anything(
    tmp_path: Path, option: list[str]
) -> None:
    out = tmp_path / "capacity"
    result = run("bench", "capacity", "--out", str(out), *option)
    assert result.returncode == 1
    assert result.stderr.startswith("sealgate: error: --population, --seconds, --rounds")
    assert not out.exists()  # no home made, nothing seeded


def _tree_digest(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_a_copied_home_uses_its_own_token(
    demo_lines: list[list[str]], home: Path, root_pin: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "restored"
    shutil.copytree(home, copy)
    original_tokens = _tree_digest(home / "softhsm" / "tokens")
    created = run(
        "seal",
        "create",
        "--root-pin-file",
        str(root_pin),
        "--unit-name",
        "备份局",
        "--unit-code",
        "11430900006151330B",
        "--kind",
        "proof",
        home=copy,
    )
    assert created.returncode == 0, created.stderr
    seal_id = created.stdout.split("\t")[1]
    # The new key went into the copy's token; the original's is byte for byte as it was.
    assert _tree_digest(home / "softhsm" / "tokens") == original_tokens
    assert _tree_digest(copy / "softhsm" / "tokens") != original_tokens
    conf = (copy / "softhsm" / "softhsm2.conf").read_text()
    assert f"directories.tokendir = {copy.resolve() / 'softhsm' / 'tokens'}\n" in conf
    rotated = run("seal", "rotate", seal_id, "--root-pin-file", str(root_pin), home=copy)
    assert rotated.returncode == 0, rotated.stderr


def test_a_damaged_registry_is_one_line(tmp_path: Path) -> None:
    damaged = tmp_path / "home"
    pin = tmp_path / "root-pin"
    pin.write_text("a root pin of this test\n")
    assert run("init", "--root-pin-file", str(pin), home=damaged).returncode == 0
    (damaged / "registry.db").write_bytes(b"not a database, but long enough to be read" * 100)
    for command in (("seal", "list"), ("client", "list")):
        result = run(*command, home=damaged)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "directory" in result.stderr


def test_seal_list_shows_when_each_certificate_ends(
    demo_lines: list[list[str]], home: Path
) -> None:
    listed = run("seal", "list", home=home)
    assert listed.returncode == 0
    # Column 7; what happened to a key since (retired, revoked, destroyed) follows it.
    ends = [line.split("\t")[6] for line in listed.stdout.splitlines()]
    assert ends and all(re.fullmatch(r"until \d{4}-\d{2}-\d{2}", end) for end in ends)


@pytest.mark.parametrize(
    "args",
    [
        ("--purpose", ""),
        ("--purpose", "loan\tcheck"),
        ("--purpose", "x" * 65),
        ("--name", "bank\x1b[2J"),
        ("--name", "b" * 201),
    ],
    ids=["empty purpose", "tab", "long purpose", "escape in name", "long name"],
)
def test_client_add_refuses_what_would_break_its_listing(
    demo_lines: list[list[str]], home: Path, args: tuple[str, str]
) -> None:
    before = run("client", "list", home=home).stdout
    flags = {"--name": "bank", "--purpose": "loan"}
    flags[args[0]] = args[1]
    result = run(
        "client", "add", "--role", "verifier", *[x for kv in flags.items() for x in kv], home=home
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert run("client", "list", home=home).stdout == before  # nothing stored


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (("--port", "70000"), "--port"),
        (("--port", "0"), "--port"),
        (("--workers", "100000"), "--workers is at most"),
    ],
)
def test_serve_refuses_ports_and_worker_counts_out_of_range(
    demo_lines: list[list[str]], home: Path, flags: tuple[str, str], refusal: str
) -> None:
    result = run("serve", *flags, home=home)  # refused before it binds or forks anything
    assert result.returncode == 1
    assert refusal in result.stderr and "Traceback" not in result.stderr


async def test_a_removed_client_is_refused(
    demo_lines: list[list[str]], home: Path, gateway_client: Any
) -> None:
    added = run("client", "add", "--name", "lost laptop", "--role", "verifier",
                "--purpose", "demo", home=home)  # fmt: skip
    assert added.returncode == 0, added.stderr
    _, client_id, token = added.stdout.strip().split("\t")
    unknown = "/v1/verify/430900-ZDXE31-DD2417-Z7GDVP?purpose=demo"
    auth = {"Authorization": f"Bearer {token}"}
    api = await gateway_client(create_app(load_settings(home)))
    assert (await api.get(unknown, headers=auth)).status == 404  # authenticated
    await api.close()

    removed = run("client", "remove", client_id, home=home)
    assert removed.returncode == 0, removed.stderr
    assert client_id not in run("client", "list", home=home).stdout
    api = await gateway_client(create_app(load_settings(home)))
    response = await api.get(unknown, headers=auth)
    assert response.status == 401
    again = run("client", "remove", client_id, home=home)
    assert again.returncode == 1 and f"no client {client_id}" in again.stderr
    assert "Traceback" not in again.stderr
    audited = run("audit", "verify", home=home)
    assert audited.returncode == 0, audited.stderr
    conn = sqlite3.connect(home / "audit.db")
    try:
        last = conn.execute("SELECT action, detail FROM audit ORDER BY seq DESC LIMIT 5").fetchall()
    finally:
        conn.close()
    assert any(action == "client-remove" and client_id in detail for action, detail in last)


def test_a_homes_files_are_its_owners_alone(demo_lines: list[list[str]], home: Path) -> None:
    client_id = demo_lines[-1][1]
    assert run("client", "remove", client_id, home=home).returncode == 0  # writes the trail
    names = ["config.toml", "registry.db", "audit.db", "audit-head.json", "secrets/holder-key"]
    for name in names:
        assert (home / name).stat().st_mode & 0o777 == 0o600, name
    assert home.stat().st_mode & 0o777 == 0o700
    # a home made before: its files are tightened by the next command
    (home / "config.toml").chmod(0o644)
    (home / "registry.db").chmod(0o644)
    assert run("client", "list", home=home).returncode == 0
    assert (home / "config.toml").stat().st_mode & 0o777 == 0o600
    assert (home / "registry.db").stat().st_mode & 0o777 == 0o600


def test_provisioning_names_its_operator(demo_lines: list[list[str]], home: Path) -> None:
    nameless = subprocess.run(
        [*SEALGATE, "--home", str(home), "client", "add", "--name", "x", "--role", "admin"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert nameless.returncode == 2 and "--operator" in nameless.stderr
    blank = run("client", "add", "--name", "x", "--role", "admin", "--operator", " ", home=home)
    assert blank.returncode == 1 and "--operator is empty" in blank.stderr

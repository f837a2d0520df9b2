"""Token provisioning and the worker's process hygiene."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import sealgate.hsm.softhsm
from sealgate.hsm import KeystoreConfig, KeystoreConfigError
from sealgate.hsm.service import ProcessSigningService
from sealgate.hsm.softhsm import create_softhsm_token, softhsm_available

needs_softhsm = pytest.mark.skipif(not softhsm_available(), reason="SoftHSM2 is not installed")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@needs_softhsm
def test_create_token_writes_a_private_configuration(tmp_path: Path) -> None:
    conf = create_softhsm_token(tmp_path, "provision", "1234-pin", "5678-so")
    text = conf.read_text()
    assert f"directories.tokendir = {tmp_path.resolve() / 'tokens'}" in text
    assert "objectstore.backend = file" in text
    assert "log.level = ERROR" in text
    assert "1234-pin" not in text
    assert any((tmp_path / "tokens").iterdir())  # the token's directory


@needs_softhsm
def test_provisioning_errors_do_not_leak_pins(tmp_path: Path) -> None:
    # SoftHSM2 wants 4..255 characters: "12" fails inside softhsm2-util.
    with pytest.raises(KeystoreConfigError) as info:
        create_softhsm_token(tmp_path, "short", "12", "so-pin-secret")
    assert "so-pin-secret" not in str(info.value)


def test_module_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALGATE_PKCS11_MODULE", "/opt/hsm/lib/vendor-pkcs11.so")
    try:
        module = importlib.reload(sealgate.hsm.softhsm)
        assert module.SOFTHSM2_MODULE == "/opt/hsm/lib/vendor-pkcs11.so"
    finally:
        monkeypatch.delenv("SEALGATE_PKCS11_MODULE")
        importlib.reload(sealgate.hsm.softhsm)


async def test_pin_is_neither_on_argv_nor_in_the_environment(
    softhsm_token: KeystoreConfig,
) -> None:
    async with ProcessSigningService(softhsm_token) as service:
        pid = service.pid
        assert pid is not None
        proc = Path(f"/proc/{pid}")
        if not proc.exists():
            pytest.skip("no /proc")
        pin = softhsm_token.pin.encode()
        assert pin not in (proc / "cmdline").read_bytes()
        assert pin not in (proc / "environ").read_bytes()


def test_worker_rejects_garbage_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sealgate.hsm.worker"],
        input=b"\x00\x00\x00\x03abc",
        capture_output=True,
        cwd=PROJECT_ROOT,
        timeout=30,
        check=False,
    )
    assert result.returncode == 4
    assert b"Traceback" not in result.stderr
    assert result.stdout == b""

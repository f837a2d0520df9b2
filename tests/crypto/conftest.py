from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sealgate.crypto import TrustList, certificate_pem
from tests.crypto.signers import NOW, Pki, make_pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki("ec", "ec")


@pytest.fixture(scope="session", params=[("ec", "ec"), ("ec", "rsa"), ("rsa", "ec")], ids="-".join)
def any_pki(request: pytest.FixtureRequest) -> Pki:
    root_kind, seal_kind = request.param
    return make_pki(root_kind, seal_kind)


@pytest.fixture(scope="session")
def trust(pki: Pki) -> TrustList:
    return TrustList.from_der([pki.root])


@pytest.fixture(scope="session")
def proof(pki: Pki) -> bytes:
    return pki.proof()


class OpenSSL:
    """Runs the real ``openssl`` binary on files in a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.directory / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["openssl", *map(str, args)], capture_output=True, timeout=30, check=False
        )

    def cms_verify(self, proof: bytes, root: bytes) -> subprocess.CompletedProcess[bytes]:
        """``openssl cms -verify`` at the signing time, content to stdout."""
        return self.run(
            "cms", "-verify", "-inform", "DER",
            "-in", self.write("p.der", proof),
            "-CAfile", self.write("root.pem", certificate_pem(root)),
            "-attime", str(int(NOW.timestamp())),
        )  # fmt: skip


@pytest.fixture
def openssl(tmp_path: Path) -> OpenSSL:
    return OpenSSL(tmp_path)

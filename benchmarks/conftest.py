"""Real parts for the benchmarks: a demo home with its SoftHSM2 token, a sealed proof."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealgate.crypto.proof import ProofSealer
from sealgate.crypto.verification import TrustList
from sealgate.gateway.home import Settings
from sealgate.gateway.provision import DemoCredentials, init_home
from sealgate.hsm.keystore import Keystore, open_keystore
from sealgate.verify.directory import SealKey
from sealgate.verify.sqlite import SqliteDirectory

pytest_plugins = ["tests.crypto.conftest"]

CONTENT = (
    '{"code":"430900-ZDXE31-DD2417-Z7GDVP","content":{"结论":"经查询，未发现有犯罪记录"},'
    '"holder":{"id":"11010519491231002X","kind":"person","name":"张三"},"type":"无犯罪记录证明"}'
).encode()


@dataclass(frozen=True)
class SealingKit:
    settings: Settings
    keystore: Keystore
    key: SealKey
    sealer: ProofSealer
    trust: TrustList

    def seal(self, content: bytes = CONTENT) -> bytes:
        pending = self.sealer.prepare(
            content,
            code="430900-ZDXE31-DD2417-Z7GDVP",
            seal_id=self.key.seal_id,
            signing_time=dt.datetime.now(dt.UTC),
        )
        return pending.finish(self.keystore.sign_digest(self.key.key_label, pending.digest))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, DemoCredentials]:
    settings, credentials = init_home(tmp_path_factory.mktemp("bench") / "home", demo=True)
    assert credentials is not None
    return settings, credentials


@pytest.fixture(scope="session")
def kit(demo_home: tuple[Settings, DemoCredentials]) -> Iterator[SealingKit]:
    settings, credentials = demo_home
    directory = SqliteDirectory(settings.sqlite_path)
    key = directory.seal(credentials.seals[0].seal_id).active_key
    trust = TrustList.from_der(der for der, _ in directory.roots())
    directory.close()
    with open_keystore(settings.keystore_config()) as keystore:
        yield SealingKit(settings, keystore, key, ProofSealer(key.certificate), trust)


def home_of(kit: SealingKit) -> Path:
    return kit.settings.home

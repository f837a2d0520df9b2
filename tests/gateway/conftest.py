"""A real demo home (SoftHSM2 token inside it) and an HTTP client on the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from sealgate.gateway.app import create_app
from sealgate.gateway.dispatch import answer_remembered_verifications
from sealgate.gateway.home import Settings
from sealgate.gateway.problems import answer_protocol_errors_as_problems
from sealgate.gateway.provision import DemoCredentials, init_home
from sealgate.hsm.softhsm import softhsm_available
from sealgate.verify.directory import Role


@dataclass(frozen=True)
class Demo:
    settings: Settings
    credentials: DemoCredentials

    @property
    def home(self) -> Path:
        return self.settings.home

    def token(self, role: Role) -> str:
        return next(t for c, t in self.credentials.clients if c.role is role)

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    @property
    def root_pin_file(self) -> Path:
        """The city root's PIN (printed once by init) in a file beside the home, never
        in it, for the commands that need the root (``--root-pin-file``)."""
        path = self.home.parent / "root-pin"
        if not path.exists():
            path.write_text(self.credentials.root_pin + "\n")
        return path

    @property
    def proof_seal(self) -> str:
        return self.credentials.seals[0].seal_id

    @property
    def verification_seal(self) -> str:
        return self.credentials.seals[1].seal_id


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A demo home for each test module (about 0.4 s to make): tests in a module add
    proofs to it and count differences; no module sees another's proofs, rotated seals
    or killed processes, so modules run in any order, or at once under pytest-xdist
    (whose workers each have their own temp dir)."""
    if not softhsm_available():
        pytest.fail("SoftHSM2 is required: run the suite with `make test`")
    home = tmp_path_factory.mktemp("sealgate") / "home"
    settings, credentials = init_home(home, demo=True)
    assert credentials is not None
    return Demo(settings, credentials)


GatewayClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def gateway_client(aiohttp_client: Any) -> GatewayClient:
    """Serves an app as ``sealgate serve`` does: remembered verifications answered by
    :class:`sealgate.gateway.dispatch.Dispatch`, everything else by the application."""

    async def serve(app: web.Application) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(app)
        runner = client.server.runner
        assert runner is not None and runner.server is not None
        answer_remembered_verifications(runner.server, app)
        answer_protocol_errors_as_problems(runner.server)
        return client

    return serve


@pytest.fixture
async def api(demo: Demo, gateway_client: GatewayClient) -> TestClient[Any, Any]:
    return await gateway_client(create_app(demo.settings))


def proof_request(seal: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seal_id": seal,
        "type": "无犯罪记录证明",
        "holder": {"kind": "person", "id": "11010519491231002X", "name": "张三"},
        "content": {"结论": "经查询，未发现有犯罪记录", "用途": "入职"},
        "valid_from": "2026-11-22",
        "valid_until": "2027-05-21",
    }
    body.update(overrides)
    return body

"""A real `sealgate serve` on a demo home, for the client library's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, demo  # noqa: F401 - the fixture, shared
from tests.gateway.serving import free_port, serving


@dataclass(frozen=True)
class Served:
    url: str
    demo: Demo

    def token(self, role: Role) -> str:
        return self.demo.token(role)


@pytest.fixture(scope="module")
def served(demo: Demo) -> Iterator[Served]:  # noqa: F811 - uses the fixture imported above
    port = free_port()
    with serving(demo.home, port):
        yield Served(f"http://127.0.0.1:{port}", demo)

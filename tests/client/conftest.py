"""A real `sealgate serve` on a demo home, for the client library's tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def served_home(demo: Demo, env: dict[str, str] | None = None) -> Iterator[Served]:  # noqa: F811
    """`sealgate serve` on the demo home as it is now: a module that provisions more (an
    office, a setting) overrides :func:`served` to do so before the gateway starts."""
    port = free_port()
    with serving(demo.home, port, env=env):
        yield Served(f"http://127.0.0.1:{port}", demo)


@pytest.fixture(scope="module")
def served(demo: Demo) -> Iterator[Served]:  # noqa: F811 - uses the fixture imported above
    with served_home(demo) as gateway:
        yield gateway

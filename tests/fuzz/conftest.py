"""The gateway's ``demo`` home and ``api`` client, reused by the HTTP fuzz tests."""

from __future__ import annotations

from tests.gateway.conftest import api, demo, gateway_client

__all__ = ["api", "demo", "gateway_client"]

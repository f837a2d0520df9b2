"""The httpx options both clients are built with."""

from __future__ import annotations

import ssl
from typing import Any

USER_AGENT = "sealgate-client/1"


def http_options(
    base_url: str, token: str | None, timeout: float, tls: bool | ssl.SSLContext
) -> dict[str, Any]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return {
        "base_url": base_url.rstrip("/"),
        "headers": headers,
        "timeout": timeout,
        "verify": tls,
        # A redirect is not followed: the bearer token goes to the gateway only.
        "follow_redirects": False,
    }

"""What the handlers share: JSON answers and bodies read within their limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from sealgate.gateway.problems import Problem

MAX_BODY = 4 * 1024 * 1024  # a full batch of 1,000 proofs fits; more is refused with 413
# Longest a client may take to send a body (a few MB over a slow line takes seconds).
BODY_SECONDS = 30.0


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        # Every JSON answer ends with a newline, so a shell prompt or the next answer
        # does not run into it (curl prints bodies as they are).
        body=json.dumps(body, ensure_ascii=False).encode() + b"\n",
        content_type="application/json",
        headers=headers,
    )


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (chunked bodies too),
    and with 408 if it has not all come within :data:`BODY_SECONDS`."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    except TimeoutError:
        # A body dribbled in, or announced and never sent, must not hold the connection
        # and the handler for ever.
        raise Problem(408, "body-timeout", "The request body did not arrive in time") from None
    except (ConnectionResetError, HttpProcessingError) as exc:
        # The client went away mid-body, or sent less than it announced: its doing, a
        # 4xx in the metrics and the audit trail, not a 500 with a traceback.
        raise Problem(400, "incomplete-body", "The request body did not arrive whole") from exc
    return bytes(body)

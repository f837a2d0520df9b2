"""The verification peers: what a user would write with FastAPI instead of the gateway.

Each answers ``GET /v1/verify/{code}`` with the proof's status as JSON, or 404. The
statuses are those of the harness's population (:func:`write_statuses` writes them from
the registry, one JSON object a line).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Response

# The Redis peer's keys: apart from the gateway's own and the floor's.
REDIS_PREFIX = "peer:"

Status = dict[str, Any]


def load_statuses(path: Path) -> dict[str, Status]:
    """The statuses file as a dict, code → status."""
    statuses: dict[str, Status] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                status = json.loads(line)
                statuses[status["code"]] = status
    return statuses


def write_statuses(path: Path, statuses: Iterable[Status]) -> int:
    """Writes ``statuses`` one JSON object a line; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for status in statuses:
            out.write(json.dumps(status, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def dict_app(statuses: dict[str, Status]) -> FastAPI:
    """FastAPI answering from a dict in the process: the simplest verifier there is."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/v1/verify/{code}")
    async def verify(code: str) -> Status:
        status = statuses.get(code)
        if status is None:
            raise HTTPException(status_code=404, detail="unknown code")
        return status

    return app


def redis_app(url: str) -> FastAPI:
    """FastAPI doing one ``redis.asyncio`` GET of the status's JSON per request."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, max_connections=64)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/v1/verify/{code}")
    async def verify(code: str) -> Response:
        value = await client.get(REDIS_PREFIX + code)
        if value is None:
            raise HTTPException(status_code=404, detail="unknown code")
        return Response(content=value, media_type="application/json")

    return app

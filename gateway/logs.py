"""Logging: one line per request, with no query string and no body.

Query strings can carry holder identity numbers (``/v1/proofs?holder_id=``), so the
access log records the path only.
"""

from __future__ import annotations

import logging
import os
import sys

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %.1fms %s',
            request.remote,
            request.method,
            request.rel_url.path,
            response.status,
            time * 1000,
            response.headers.get("X-Request-Id", "-"),
        )


def configure_logging() -> None:
    level = os.environ.get("SEALGATE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )

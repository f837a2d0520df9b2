"""Logging: one line per request, with no query string and no body.

Query strings can carry holder identity numbers (``/v1/proofs?holder_id=``), so the
access log records the path only, and not even that where a code goes and something else
was typed (an identity number, likeliest).
"""

from __future__ import annotations

import logging
import os
import sys

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, Request, StreamResponse

from sealgate.verify.code import is_well_formed

SLOW_SECONDS = 1.0
NO_ROUTE = "(no route)"


class AccessLogger(AbstractAccessLogger):
    """``SEALGATE_ACCESS_LOG``: ``errors`` (default: answers ≥ 500 and answers slower than
    :data:`SLOW_SECONDS`), ``all``, or ``off``.

    Not every request by default: at a city's verification rate a line per request costs
    as much CPU as the answer, and the audit trail already records every audited request
    (and metrics count the rest).
    """

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        mode = os.environ.get("SEALGATE_ACCESS_LOG", "errors").lower()
        self._all = mode == "all"
        self._off = mode == "off"

    @property
    def enabled(self) -> bool:
        return not self._off and self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self._all and response.status < 500 and time < SLOW_SECONDS:
            return
        self.logger.info(
            '%s "%s %s" %d %.1fms %s',
            request.remote,
            request.method,
            _loggable_path(request),
            response.status,
            time * 1000,
            response.headers.get("X-Request-Id", "-"),
        )


def _loggable_path(request: BaseRequest) -> str:
    """The path as received (percent-encoded: no raw control characters reach the log),
    or its route's pattern when what stands where a code goes is not a code, or a marker
    when no route took it (the path is then anything a client typed)."""
    if isinstance(request, Request):
        try:
            match_info = request.match_info
        except AssertionError:  # answered before the router (sealgate.gateway.dispatch): a code
            match_info = None
        if match_info is None:
            return request.rel_url.raw_path
        resource = match_info.route.resource
        if resource is None:
            return NO_ROUTE
        typed = match_info.get("code")
        if typed is not None and not is_well_formed(typed):
            return resource.canonical
    return request.rel_url.raw_path


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a malformed HTTP request with its raw request line, query string
    included (where holder ids travel); keep one line naming the error, nothing more."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "malformed HTTP request refused (%s)"
            record.args = (type(error).__name__,)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging() -> None:
    level = os.environ.get("SEALGATE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.server").addFilter(MalformedRequestFilter())

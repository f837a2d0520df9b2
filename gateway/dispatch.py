"""The worker's request handler: remembered verifications answered before the router.

``GET /v1/verify/{code}`` is the route the whole city calls. Through the application a
request pays for the router, aiohttp's middleware chain and ours: about a quarter of
its instructions (callgrind, docs/capacity.md). A verification whose every input is
already remembered needs none of it. :class:`Dispatch` answers such a request itself,
with the same checks (:meth:`VerifyEndpoint.remembered_answer`), the same audit record
written before the answer leaves (503 when it cannot be), the same request id, metrics
and body; everything else, every refusal included, goes to the application unchanged.
The answer leaves as one pre-serialised message (:mod:`sealgate.gateway.prepared`) when the
request is HTTP/1.1 with keep-alive, as aiohttp's own response otherwise.

A request takes this way only when its raw target is the verify route's: a ``GET`` of
``/v1/verify/<text>`` where ``<text>`` is a code already checked as typed. Such a text
holds nothing that the router would decode or normalise (no ``%``, ``/`` or dot
segment), so both ways see the same code.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from sealgate.gateway.audit import AuditUnavailable
from sealgate.gateway.keys import AUDIT, METRICS, VERIFY
from sealgate.gateway.language import wants_chinese
from sealgate.gateway.middleware import REQUEST_IDS, audit_row, audit_unavailable, request_id_of
from sealgate.gateway.prepared import AnswerWriter
from sealgate.gateway.verifying import ANSWER_HEADERS

__all__ = ["Dispatch", "answer_remembered_verifications"]

VERIFY_PREFIX = "/v1/verify/"
VERIFY_ROUTE = "/v1/verify/{code}"  # its name in metrics, as the router's resource

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Dispatch:
    """The server's handler: remembered verifications here, the rest to ``application``."""

    def __init__(self, app: web.Application, application: RequestHandler) -> None:
        # The components exist once the application has started.
        self._application = application
        self._verify = app[VERIFY]
        self._audit = app[AUDIT]
        self._ids = app[REQUEST_IDS]
        self._metrics = app[METRICS]
        self._answers = AnswerWriter(ANSWER_HEADERS)
        self.answered = 0  # by this handler; the application answered the rest

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        target = request.raw_path
        if request.method != "GET" or not target.startswith(VERIFY_PREFIX):
            return await self._application(request)
        if wants_chinese(request.headers.get("Accept-Language")):
            return await self._application(request)  # its answer carries labels in Chinese
        started = time.perf_counter()
        path, _, query = target.partition("?")
        code_text = path[len(VERIFY_PREFIX) :]
        known = self._verify.remembered_answer(
            request.headers.get("Authorization", ""), query, code_text
        )
        if known is None:
            return await self._application(request)
        client, purpose, body = known
        request_id = request_id_of(request, self._ids)
        row = audit_row("verify", client, purpose, code_text, 200, request_id, time.time(), {})
        response: web.StreamResponse
        try:
            await self._audit.record_rows([row])
        except AuditUnavailable:
            response = audit_unavailable(request_id)
            response.headers["X-Request-Id"] = request_id
        else:
            response = self._answers.respond(request, body, request_id)
        self._metrics.observe(VERIFY_ROUTE, "GET", response.status, time.perf_counter() - started)
        self.answered += 1
        return response


def answer_remembered_verifications(server: web.Server, app: web.Application) -> Dispatch:
    """Put a :class:`Dispatch` in front of ``app`` on ``server``; call after the app's
    startup (it made the components) and before the first connection."""
    dispatch = Dispatch(app, server.request_handler)
    server.request_handler = dispatch
    return dispatch

"""``sealgate tsa serve``: the development RFC 3161 TSA over HTTP (RFC 3161 §3.4).

``POST /`` with an ``application/timestamp-query`` body answers
``application/timestamp-reply``; a request the TSA refuses is answered in the protocol
(200 with a PKIStatus rejection), as RFC 3161 has it. ``GET /tsa.pem`` gives the TSA
certificate and its root. The key signs in a signing process of its own
(:class:`~sealgate.hsm.service.ProcessSigningService`), which gathers concurrent requests
into one batch, as the gateway's does.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from sealgate.hsm.errors import HsmError
from sealgate.hsm.service import ProcessSigningService, SigningService
from sealgate.tsa.authority import RequestRejected, TokenIssuer
from sealgate.tsa.home import TSA_KEY_LABEL, TsaHome, open_tsa_home

__all__ = ["QUERY_TYPE", "REPLY_TYPE", "create_tsa_app", "serve_tsa"]

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
#: A TimeStampReq is about a hundred bytes; anything near this is not one.
MAX_QUERY = 16 * 1024

log = logging.getLogger("sealgate.tsa")

_HOME = web.AppKey("tsa_home", TsaHome)
_ISSUER = web.AppKey("tsa_issuer", TokenIssuer)
_SIGNING = web.AppKey("tsa_signing", SigningService)


async def _signing(app: web.Application) -> AsyncIterator[None]:
    signing = ProcessSigningService(app[_HOME].keystore)
    await signing.start()
    app[_SIGNING] = signing
    try:
        yield
    finally:
        await signing.close()


async def _stamp(request: web.Request) -> web.Response:
    if request.content_type != QUERY_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send {QUERY_TYPE}\n")
    if request.content_length is not None and request.content_length > MAX_QUERY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_QUERY, actual_size=request.content_length)
    body = await request.read()
    seconds = int(time.time())
    try:
        pending = request.app[_ISSUER].prepare(
            body,
            gen_time=datetime.fromtimestamp(seconds, UTC),
            serial=secrets.randbits(126) | 1 << 126,
        )
    except RequestRejected as refused:
        return web.Response(body=refused.response(), content_type=REPLY_TYPE)
    try:
        signature = await request.app[_SIGNING].sign_digest(TSA_KEY_LABEL, pending.digest)
    except HsmError as exc:
        log.warning("the TSA key cannot sign: %s", exc)
        failed = RequestRejected("system_failure", "the TSA cannot sign now; retry later")
        return web.Response(body=failed.response(), content_type=REPLY_TYPE)
    return web.Response(body=pending.finish(signature), content_type=REPLY_TYPE)


async def _chain(request: web.Request) -> web.Response:
    return web.Response(text=request.app[_HOME].chain_pem, content_type="application/x-pem-file")


def create_tsa_app(home: TsaHome) -> web.Application:
    app = web.Application(client_max_size=MAX_QUERY)
    app[_HOME] = home
    app[_ISSUER] = TokenIssuer(home.certificate_der)
    app.cleanup_ctx.append(_signing)
    app.router.add_post("/", _stamp)
    app.router.add_get("/tsa.pem", _chain)
    return app


def serve_tsa(directory: Path, host: str, port: int) -> None:
    """Serve the TSA of ``directory`` (made there on first start) until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    home = open_tsa_home(directory)
    print(
        f"TSA on http://{host}:{port}/; verifiers trust {home.directory / 'tsa-root.pem'}",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(create_tsa_app(home), host=host, port=port, print=None, access_log=None)

"""The holder's own proofs (益阳 规程 第十二条: viewed and downloaded in the personal space
without applying), for the portal with the identity platform's assertion."""

from __future__ import annotations

from aiohttp import web

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.handlers.common import json_response
from sealgate.gateway.keys import AUTH, CHECKER, HOLDER_ASSERTIONS, REGISTRY
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.problems import unknown_code
from sealgate.verify.directory import Role

NO_STORE = {"Cache-Control": "no-store"}


async def get_my_proofs(request: web.Request) -> web.Response:
    await request.app[AUTH].require(request, Role.PORTAL)
    holder_key = await request.app[HOLDER_ASSERTIONS].holder_key(request)
    request[AUDIT_NOTE].detail = {"holder": holder_key.hex()}
    found = await request.app[REGISTRY].proofs_of_holder(holder_key)
    checker = request.app[CHECKER]
    chinese = asks_chinese(request)
    items = [checker.status_view(p, chinese=chinese) for p in found]
    return json_response({"items": items}, headers=NO_STORE)


async def get_my_document(request: web.Request) -> web.Response:
    await request.app[AUTH].require(request, Role.PORTAL)
    holder_key = await request.app[HOLDER_ASSERTIONS].holder_key(request)
    request[AUDIT_NOTE].detail = {"holder": holder_key.hex()}
    record = await request.app[CHECKER].record(request.match_info["code"])
    if record.holder_key != holder_key:
        raise unknown_code()  # another holder's proof: as if there were none
    return web.Response(
        body=record.document,
        content_type="application/pkcs7-mime",
        headers={
            "Content-Disposition": f'attachment; filename="{record.code}.p7m"',
            **NO_STORE,
        },
    )

"""Every route the gateway describes has an operation in the client, and the blocking and
the asyncio clients have the same operations, with the same parameters."""

from __future__ import annotations

import inspect
import re
from typing import Any

from sealgate.client import AsyncClient, Client, notices
from sealgate.client import calls as proofs
from sealgate.client import calls_admin as admin
from sealgate.client import calls_casework as casework
from sealgate.client import calls_showing as showing
from sealgate.client.calls import Call
from sealgate.gateway.openapi import OPENAPI
from sealgate.verify.code import CodeAuthority
from tests.client.proofs import HOLDER_ID

# Pages for a browser, not operations: the check page and its script.
NOT_OPERATIONS = {"/check", "/check/check.js"}
CODE = str(CodeAuthority(b"\x01" * 32, "430900").issue())


def every_call() -> list[Call[Any]]:
    return [
        proofs.seal({}, None),
        proofs.seal_batch([], None),
        proofs.verify(CODE, "demo"),
        proofs.verify_batch([CODE], "demo"),
        proofs.change_status(CODE, "pledged", "质押", None),
        proofs.history(CODE),
        proofs.find_proofs(HOLDER_ID, "无犯罪记录证明", None, "token"),
        proofs.document(CODE, None, "token"),
        proofs.verify_document(b"\x30", "demo"),
        proofs.trust(),
        proofs.crl(),
        proofs.health(),
        proofs.ready(),
        proofs.metrics(),
        proofs.openapi(),
        casework.create_request({}, "staff-1"),
        casework.requests("overdue", 10),
        casework.request("R-1"),
        casework.respond("R-1", {}, "staff-1"),
        casework.reclassify("R-1", "paper", "原因", "staff-1"),
        casework.extend("R-1", "原因", "head-1", "staff-1"),
        casework.return_request("R-1", "原因", "staff-1"),
        casework.holder_requests(HOLDER_ID),
        casework.grant_consent(HOLDER_ID, "client", "事项", ["类型"], "2030-01-01", 1),
        casework.consents(HOLDER_ID),
        casework.revoke_consent("CN-1", HOLDER_ID),
        casework.my_proofs("assertion"),
        casework.my_document(CODE, "assertion"),
        showing.qr(CODE, "dynamic"),
        showing.qr_image(CODE, "png", "static"),
        showing.verify_qr("SG1:A B/C%D"),
        showing.status_list(1, None),
        showing.public_check(CODE),
        admin.clients(),
        admin.add_client("bank", "verifier", [], ["开户"], None, "staff-1"),
        admin.remove_client("C-1", "staff-1"),
        admin.set_grants("C-1", "verifier", [], ["开户"], None, "staff-1"),
        admin.set_limits("C-1", 50, None, "staff-1"),
        admin.clear_limits("C-1", "staff-1"),
        admin.seals(),
        admin.suspension("SEAL-1", True, "staff-1"),
        admin.suspension("SEAL-1", False, "staff-1"),
        notices.subscribe("https://bank.example/hook", ["status.changed"], [CODE], "demo"),
        notices.subscriptions(),
        notices.subscription("sub_1"),
        notices.unsubscribe("sub_1"),
        notices.deliveries("sub_1", 10),
    ]


def template(path: str) -> re.Pattern[str]:
    """An OpenAPI path as the paths it stands for: a parameter is one escaped segment."""
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(path)) + "$")


def test_every_route_has_an_operation() -> None:
    sent = [(call.method.lower(), call.path) for call in every_call()]
    missing = [
        f"{method.upper()} {path}"
        for path, operations in OPENAPI["paths"].items()
        if path not in NOT_OPERATIONS
        for method in operations
        if not any(m == method and template(path).match(p) for m, p in sent)
    ]
    assert missing == []
    assert ("get", "/v1/verify/qr/SG1%3AA%20B%2FC%25D") in sent  # the payload one segment


def test_both_clients_have_the_same_operations() -> None:
    def operations(kind: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(kind, inspect.isfunction)
            if not name.startswith("_") and name != "close"
        }

    blocking, waiting = operations(Client), operations(AsyncClient)
    assert blocking.keys() == waiting.keys()
    for name, signature in blocking.items():
        assert signature.parameters.keys() == waiting[name].parameters.keys(), name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
    assert {"create_request", "respond", "grant_consent", "my_proofs", "public_check"} <= set(
        blocking
    )

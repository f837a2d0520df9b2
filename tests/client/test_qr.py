"""亮码扫码 and the public check through the client library, against a real `sealgate
serve`: a proof's QR code for its holder, the scanned payload checked online, the signed
status list fetched (and checked offline with the gateway's keys), the public check."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sealgate.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    HolderKind,
    InvalidCode,
    PublicCheck,
    QrCode,
    Status,
    StatusList,
    UnknownCode,
    Unprocessable,
)
from sealgate.crypto.key_trust import KeyTrust
from sealgate.gateway.attestation import KEYS_FILE
from sealgate.verify.directory import Role
from sealgate.verify.qr import verify_qr
from tests.client.conftest import Served, served_home
from tests.client.proofs import PROOF_TYPE, proof
from tests.gateway.conftest import Demo
from tests.gateway.serving import free_port
from tests.waiting import until

pytestmark = pytest.mark.processes

BOUND = 2.0  # the city's status_list_bound for these tests: lists are signed quickly


@pytest.fixture(scope="module")
def served(demo: Demo) -> Iterator[Served]:
    with served_home(demo, env={"SEALGATE_STATUS_LIST_BOUND": str(BOUND)}) as gateway:
        yield gateway


def published(anyone: Client, list_id: int) -> StatusList:
    """The list, once signed: within the bound after its first index."""

    def fetch() -> StatusList | None:
        try:
            return anyone.status_list(list_id)
        except UnknownCode:
            return None

    listed = until(fetch, timeout=10 * BOUND, what="the status list published")
    assert listed is not None
    return listed


def test_a_qr_code_shown_scanned_and_its_status_list_read(served: Served) -> None:
    demo = served.demo
    trust = KeyTrust.from_json((demo.home / KEYS_FILE).read_bytes())
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.ISSUER)) as office,
        Client(served.url, token=served.token(Role.PORTAL)) as portal,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
        Client(served.url) as anyone,
    ):
        code = signer.seal(proof(demo.proof_seal)).code
        shown = portal.qr(code.lower())
        assert isinstance(shown, QrCode) and shown.code == code
        assert shown.payload.startswith("SG1:") and shown.payload not in repr(shown)
        assert shown.expires_at is not None and shown.expires_at > shown.issued_at
        assert 1 <= shown.qr_version < 15
        static = portal.qr(code, variant="static")
        assert static.expires_at is None
        assert portal.qr_image(code).startswith(b"\x89PNG\r\n\x1a\n")
        assert b"<svg" in portal.qr_image(code, kind="svg", variant="static")

        # the payload's alphabet has ' ', '%', '/' and ':': the client escapes them
        checked = bank.verify_qr(shown.payload)
        assert (checked.code, checked.status, checked.type) == (code, Status.VALID, PROOF_TYPE)
        assert (checked.holder.kind, checked.holder.name) == (HolderKind.PERSON, "张*")
        assert checked.payload_expires_at == shown.expires_at
        assert bank.verify_qr(static.payload).payload_expires_at is None

        listed = published(anyone, shown.status_list_id)
        assert listed.cache_control == f"public, max-age={int(BOUND / 2)}"
        verdict = verify_qr(shown.payload, trust, listed.token, now=time.time())
        assert verdict.status == "valid"  # the token is the gateway's signed list
        again = anyone.status_list(shown.status_list_id, cached=listed)
        assert again is listed or again.etag != listed.etag  # 304, or signed anew since

        office.change_status(code, Status.REVOKED, reason="吊销")
        assert bank.verify_qr(shown.payload).status is Status.REVOKED
        with pytest.raises(Conflict):  # no new QR code for it
            portal.qr(code)
        with pytest.raises(Forbidden):  # the portal's route
            bank.qr(code)
        with pytest.raises(Forbidden):  # the verifier's route
            portal.verify_qr(shown.payload)
        with pytest.raises(Unprocessable) as garbage:
            bank.verify_qr("SG1:ABC")
        assert garbage.value.code == "invalid-qr"
        with pytest.raises(UnknownCode):
            anyone.status_list(999_999)


def test_the_public_check_needs_no_token(served: Served) -> None:
    demo = served.demo
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.PORTAL)) as portal,
        Client(served.url) as anyone,
    ):
        code = signer.seal(proof(demo.proof_seal)).code
        typed = code.replace("-", "").lower()
        answer = anyone.public_check(typed)
        assert isinstance(answer, PublicCheck) and answer.valid
        assert (answer.type, answer.unit_name) == (PROOF_TYPE, "益阳市公安局")
        assert answer.valid_until == "2027-11-21"
        scanned = anyone.public_check(portal.qr(code).payload)
        assert scanned == answer
    one_typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(InvalidCode):
        nowhere.public_check(one_typo)  # refused here: nothing listens there


async def test_the_async_client_has_the_same_qr_operations(served: Served) -> None:
    demo = served.demo
    async with (
        AsyncClient(served.url, token=served.token(Role.SIGNER)) as signer,
        AsyncClient(served.url, token=served.token(Role.PORTAL)) as portal,
        AsyncClient(served.url, token=served.token(Role.VERIFIER)) as bank,
        AsyncClient(served.url) as anyone,
    ):
        code = (await signer.seal(proof(demo.proof_seal, 1))).code
        shown = await portal.qr(code)
        assert (await portal.qr_image(code, kind="svg")).lstrip().startswith(b"<")
        assert (await bank.verify_qr(shown.payload)).status is Status.VALID
        assert (await anyone.public_check(code)).valid
        with Client(served.url) as blocking:  # the list published, as the sync test waits
            first = published(blocking, shown.status_list_id)
        listed = await anyone.status_list(shown.status_list_id, cached=first)
        assert listed.list_id == shown.status_list_id and listed.token

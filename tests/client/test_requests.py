"""Verification requests through the client library, against a real `sealgate serve`: a
requesting office's system sends, the responding office's answers, reclassifies, extends
and returns, and the holder's personal space lists them (docs/design.md §12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sealgate.client import (
    Action,
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    Holder,
    HolderKind,
    InvalidHolderId,
    InvalidRequest,
    Mode,
    NewRequest,
    RequestAnswer,
    State,
    Tier,
    UnknownCode,
    Unprocessable,
    VerificationRequest,
    verify_offline,
)
from sealgate.verify.directory import Role
from tests.client.conftest import Served, served_home
from tests.gateway import test_requests as gateway_requests
from tests.gateway.conftest import Demo
from tests.gateway.test_requests import (
    HOLDER,
    REQUESTER_CODE,
    REQUESTER_UNIT,
    RESPONDER_CODE,
    RESPONDER_UNIT,
    Offices,
)
from tests.gateway.test_requests import new_request as new_request_json

pytestmark = pytest.mark.processes

offices = gateway_requests.offices  # the fixture: the offices in the directory
STAFF = "staff-0042"
HOLDER_ID = HOLDER["id"]
THE_HOLDER = Holder(HolderKind.PERSON, HOLDER_ID, HOLDER["name"])


@pytest.fixture(scope="module")
def served(demo: Demo, offices: Offices) -> Iterator[Served]:
    """The gateway, started once the offices are in the directory."""
    with served_home(demo) as gateway:
        yield gateway


def token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def new_request(tier: Tier = Tier.DATABASE, mode: Mode = Mode.VERIFY) -> NewRequest:
    return NewRequest(
        responder=RESPONDER_CODE.lower(),  # checked and upper-cased before it is sent
        type="无犯罪记录证明",
        holder=THE_HOLDER,
        matter="社会保障卡申领",
        case_ref="YY-RS-2027-000123",
        mode=mode,
        tier=tier,
    )


def answer(seal: str) -> RequestAnswer:
    return RequestAnswer(
        seal_id=seal,
        holder=THE_HOLDER,
        content={"结论": "经查询，未发现有犯罪记录"},
        valid_from="2026-11-22",
        valid_until="2027-07-06",
    )


def test_a_request_sent_answered_and_read_with_its_steps(served: Served, offices: Offices) -> None:
    with (
        Client(served.url, token=token(offices.requester)) as requester,
        Client(served.url, token=token(offices.responder)) as responder,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
        Client(served.url) as anyone,
    ):
        created = requester.create_request(new_request(), operator=STAFF)
        assert isinstance(created, VerificationRequest)
        assert (created.state, created.mode, created.tier) == (
            State.ACCEPTED,
            Mode.VERIFY,
            Tier.DATABASE,
        )
        assert (created.requester.unit_name, created.requester.unit_code) == (
            REQUESTER_UNIT,
            REQUESTER_CODE,
        )
        assert created.responder.unit_name == RESPONDER_UNIT
        assert created.holder.id == "1101**********002X" and created.holder.could_be(HOLDER_ID)
        assert created.due_at > created.registered_at and created.answered_at is None
        assert not created.steps and created.document is None
        assert created.id in [r.id for r in responder.requests(state=State.ACCEPTED)]
        assert created.id in [r.id for r in requester.requests(state="accepted", limit=500)]

        answered = responder.respond(
            created.id, answer(served.demo.verification_seal), operator=STAFF
        )
        assert answered.state is State.ANSWERED and answered.answer_code is not None
        assert answered.elapsed_seconds is not None and answered.elapsed_seconds >= 0
        assert answered.document is not None
        sealed = verify_offline(answered.document, anyone.trust())
        assert sealed.code == answered.answer_code and sealed.holder_id == HOLDER_ID
        assert sealed.content["endorsement"]["extracting_unit"] == REQUESTER_UNIT
        assert created.id not in [r.id for r in responder.requests(state=State.ACCEPTED)]

        seen = requester.request(created.id)
        assert seen.state is State.ANSWERED and seen.answer_code == answered.answer_code
        assert seen.steps is not None
        assert [(s.action, s.to_state, s.operator) for s in seen.steps] == [
            (Action.REGISTER, State.ACCEPTED, STAFF),
            (Action.RESPOND, State.ANSWERED, STAFF),
        ]
        assert seen.steps[0].from_state is None
        verified = bank.verify(answered.answer_code, purpose="demo")
        assert verified.seal_kind == "verification"  # 查询核验专用章


def test_reclassify_extend_and_return(served: Served, offices: Offices) -> None:
    with (
        Client(served.url, token=token(offices.requester)) as requester,
        Client(served.url, token=token(offices.responder)) as responder,
    ):
        archive = requester.create_request(new_request(Tier.ARCHIVE), operator=STAFF)
        assert archive.extendable and not archive.extended
        extended = responder.extend(
            archive.id, reason="档案在异地库房，需调阅", approver="head-0007", operator=STAFF
        )
        assert extended.extended and extended.due_at > archive.due_at
        assert extended.reason == "档案在异地库房，需调阅"
        with pytest.raises(Conflict) as twice:
            responder.extend(archive.id, reason="再延", approver="head-0007", operator=STAFF)
        assert twice.value.code == "step-not-allowed"
        steps = requester.request(archive.id).steps
        assert steps is not None and steps[1].approver == "head-0007"

        database = requester.create_request(new_request(), operator=STAFF)
        moved = responder.reclassify(
            database.id, Tier.PAPER, reason="数据库未收录，需查纸质档案", operator=STAFF
        )
        assert moved.tier is Tier.PAPER
        with pytest.raises(Conflict):
            responder.reclassify(database.id, "complex", reason="另一模式", operator=STAFF)

        returned = responder.return_request(
            database.id, reason="不属于本单位职责范围", operator=STAFF
        )
        assert (returned.state, returned.reason) == (State.RETURNED, "不属于本单位职责范围")
        with pytest.raises(Conflict) as closed:
            responder.respond(database.id, answer(served.demo.verification_seal), operator=STAFF)
        assert closed.value.code == "request-closed"


def test_the_holder_sees_requests_and_refusals_are_raised(served: Served, offices: Offices) -> None:
    with (
        Client(served.url, token=token(offices.requester)) as requester,
        Client(served.url, token=token(offices.responder)) as responder,
        Client(served.url, token=token(offices.other_signer)) as other_office,
        Client(served.url, token=token(offices.portal)) as portal,
    ):
        created = requester.create_request(new_request(), operator=STAFF)
        mine = {r.id: r for r in portal.holder_requests(HOLDER_ID.lower())}[created.id]
        assert (mine.state, mine.requester.unit_name) == (State.ACCEPTED, REQUESTER_UNIT)
        assert mine.matter == "社会保障卡申领"
        with pytest.raises(Forbidden):
            requester.holder_requests(HOLDER_ID)
        with pytest.raises(UnknownCode):  # another office's request: as if there were none
            other_office.respond(created.id, answer(served.demo.verification_seal), operator=STAFF)
        with pytest.raises(Unprocessable) as wrong_kind:  # verify: a 查询核验专用章 answers
            responder.respond(created.id, answer(served.demo.proof_seal), operator=STAFF)
        assert wrong_kind.value.code == "seal-kind-mismatch"
        # the gateway checks the operator's form: an identity number is refused
        with pytest.raises(InvalidRequest) as operator:
            requester.create_request(new_request(), operator=HOLDER_ID)
        assert operator.value.field == "X-Operator"
        # refused here, before anything is sent
        with pytest.raises(ValueError, match="staff identifier"):
            requester.create_request(new_request(), operator="张三")
        with pytest.raises(InvalidHolderId):
            portal.holder_requests("110105194912310039")
        # a mapping is sent as it is: the gateway's refusal names the field
        with pytest.raises(InvalidRequest) as refused:
            requester.create_request({**new_request_json(), "tier": "online"}, operator=STAFF)
        assert refused.value.field == "tier"


async def test_the_async_client_has_the_same_request_operations(
    served: Served, offices: Offices
) -> None:
    async with (
        AsyncClient(served.url, token=token(offices.requester)) as requester,
        AsyncClient(served.url, token=token(offices.responder)) as responder,
        AsyncClient(served.url, token=token(offices.portal)) as portal,
    ):
        issue = await requester.create_request(
            new_request(Tier.COMPLEX, Mode.ISSUE), operator=STAFF
        )
        assert issue.id in [r.id for r in await responder.requests(state=State.ACCEPTED)]
        extended = await responder.extend(
            issue.id, reason="材料复杂", approver="head-0007", operator=STAFF
        )
        assert extended.extended
        answered = await responder.respond(
            issue.id, answer(served.demo.proof_seal), operator=STAFF
        )  # 在线开具: 电子证明专用章
        assert answered.state is State.ANSWERED and answered.document
        assert (await requester.request(issue.id)).steps is not None
        other = await requester.create_request(new_request(), operator=STAFF)
        moved = await responder.reclassify(
            other.id, Tier.ARCHIVE, reason="需查档案", operator=STAFF
        )
        assert moved.tier is Tier.ARCHIVE
        returned = await responder.return_request(other.id, reason="退回", operator=STAFF)
        assert returned.state is State.RETURNED
        shown = {r.id: r for r in await portal.holder_requests(HOLDER_ID)}
        assert shown[issue.id].answer_code == answered.answer_code
        assert shown[other.id].state is State.RETURNED

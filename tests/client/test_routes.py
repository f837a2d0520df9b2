"""Every route the gateway has, through the client library, against a real `sealgate serve`."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from sealgate.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    Holder,
    HolderKind,
    InvalidCode,
    InvalidHolderId,
    ProofRejected,
    Status,
    Unauthorized,
    UnknownCode,
    Unprocessable,
    Verification,
    normalise_code,
    verify_offline,
)
from sealgate.verify.code import CodeAuthority
from sealgate.verify.directory import Role
from tests.client.conftest import Served
from tests.client.proofs import HOLDER_ID, PROOF_TYPE, proof
from tests.gateway.serving import free_port

pytestmark = pytest.mark.processes


def test_seal_verify_pledge_release_revoke_and_history(served: Served) -> None:
    seal = served.demo.proof_seal
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
        Client(served.url, token=served.token(Role.ISSUER)) as office,
    ):
        sealed = signer.seal(proof(seal))
        assert sealed.status is Status.VALID and not sealed.replayed
        assert sealed.code == normalise_code(sealed.code)

        # typed as a person would: lower case, no hyphens, O for 0
        typed = sealed.code.replace("-", "").lower().replace("0", "o")
        answer = bank.verify(typed, purpose="demo")
        assert answer.code == sealed.code and answer.status is Status.VALID
        assert answer.type == PROOF_TYPE
        assert answer.holder.kind is HolderKind.PERSON
        assert (answer.holder.name, answer.holder.id) == ("张*", "1101**********002X")
        assert answer.holder.could_be(HOLDER_ID, "张三")
        assert not answer.holder.could_be("110105194912310038", "张三")
        assert answer.issuer.unit_code == "11430900006151330B"

        pledged = office.change_status(sealed.code, Status.PLEDGED, reason="贷款质押")
        assert pledged.status is Status.PLEDGED
        assert bank.verify(sealed.code, purpose="demo").status is Status.PLEDGED
        released = office.change_status(sealed.code, "valid", reason="贷款结清，解除质押")
        assert released.status is Status.VALID
        office.change_status(sealed.code, Status.REVOKED, reason="吊销")
        with pytest.raises(Conflict) as refused:
            office.change_status(sealed.code, Status.VALID, reason="不可恢复")
        assert refused.value.code == "status-terminal"

        history = office.history(sealed.code)
        assert history.status is Status.REVOKED
        assert [(c.from_status, c.to_status) for c in history.changes] == [
            (Status.VALID, Status.PLEDGED),
            (Status.PLEDGED, Status.VALID),
            (Status.VALID, Status.REVOKED),
        ]
        assert history.changes[0].reason == "贷款质押"


def test_batch_reuse_documents_and_trust(served: Served) -> None:
    seal = served.demo.proof_seal
    holder = "110105194912310038"  # a holder of this test's own
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
        Client(served.url, token=served.token(Role.ISSUER)) as office,
        Client(served.url) as anyone,
    ):
        batch = signer.seal_batch([proof(seal, n, holder) for n in range(3)])
        assert len({p.code for p in batch}) == 3

        found = bank.find_proofs(holder.lower(), PROOF_TYPE, purpose="demo")
        assert sorted(p.code for p in found) == sorted(p.code for p in batch)

        trust = anyone.trust()
        crl = anyone.crl()  # the root's CRL, as OpenSSL reads it
        parsed = subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-noout", "-issuer"],
            input=crl, capture_output=True, check=True,
        )  # fmt: skip
        assert b"CN" in parsed.stdout
        assert trust.roots and {s.seal_id for s in trust.seals} >= {seal}
        assert trust.version >= 1 and all(s.retired_at is None for s in trust.seals)
        assert sorted(use for key in trust.keys for use in key.uses) == [
            "consent", "qr", "status-list",
        ]  # fmt: skip
        assert all(k.public_key.startswith("-----BEGIN PUBLIC KEY-----") for k in trust.keys)
        for document in (
            bank.document(batch[0].code, purpose="demo"),
            office.document(batch[0].code),
        ):
            assert document == batch[0].document
            offline = verify_offline(document, trust)
            assert offline.code == batch[0].code and offline.holder_id == holder

        unknown = str(CodeAuthority(b"\x01" * 32, "430900").issue())  # another key's
        checked = bank.verify_batch(
            [(batch[0].code, holder), (batch[1].code, HOLDER_ID), unknown], purpose="demo"
        )
        first, second, third = checked
        assert isinstance(first, Verification) and first.holder_match is True
        assert isinstance(second, Verification) and second.holder_match is False
        assert isinstance(third, UnknownCode) and third.status == 404
        with pytest.raises(InvalidCode):  # checked here: nothing is sent
            bank.verify_batch([batch[0].code, batch[0].code[:-1] + "#"], purpose="demo")

        check = bank.verify_document(batch[1].document, purpose="demo")
        assert check.registered and check.status is Status.VALID
        assert check.code == batch[1].code

        tampered = bytearray(batch[2].document)
        tampered[-1] ^= 1
        with pytest.raises(ProofRejected):
            verify_offline(bytes(tampered), trust.roots_pem)
        with pytest.raises(Unprocessable) as refused:
            bank.verify_document(bytes(tampered), purpose="demo")
        assert refused.value.code == "invalid-proof"

        assert anyone.health()
        assert anyone.ready().ready
        assert "sealgate_requests" in anyone.metrics()
        assert "/v1/verify/{code}" in anyone.openapi()["paths"]


def test_an_organisation_holder_is_matched_as_the_gateway_masks_it(served: Served) -> None:
    uscc, name = "11430900006151330B", "益阳市公安局"
    request = dataclasses.replace(
        proof(served.demo.proof_seal), holder=Holder(HolderKind.ORG, uscc.lower(), name)
    )
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
    ):
        answer = bank.verify(signer.seal(request).code, purpose="demo")
        assert answer.holder.kind is HolderKind.ORG
        assert answer.holder.could_be(uscc, name)
        assert not answer.holder.could_be(uscc, "长沙市公安局")
        assert [p.code for p in bank.find_proofs(uscc, PROOF_TYPE, purpose="demo")] == [answer.code]


def test_refusals_raise_the_error_tree(served: Served) -> None:
    seal = served.demo.proof_seal
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
        Client(served.url, token="not-a-token") as stranger,
    ):
        code = signer.seal(proof(seal)).code
        # well-formed (check character right), but issued under another key
        forged = str(CodeAuthority(b"k" * 32, "430900").issue())
        with pytest.raises(UnknownCode) as unknown:
            bank.verify(forged, purpose="demo")
        assert unknown.value.status == 404 and unknown.value.code == "unknown-code"
        assert unknown.value.request_id
        with pytest.raises(Forbidden):
            bank.verify(code, purpose="a purpose never granted")
        with pytest.raises(Forbidden):
            signer.verify(code, purpose="demo")
        with pytest.raises(Unauthorized):
            stranger.verify(code, purpose="demo")
        with pytest.raises(InvalidHolderId):
            bank.find_proofs("110105194912310039", PROOF_TYPE, purpose="demo")
        with pytest.raises(Unprocessable) as reused:
            signer.seal(proof(seal, 1), idempotency_key="same-key")
            signer.seal(proof(seal, 2), idempotency_key="same-key")
        assert reused.value.code == "idempotency-key-reused"


def test_a_mistyped_code_is_refused_without_a_request(served: Served) -> None:
    with Client(served.url, token=served.token(Role.SIGNER)) as signer:
        code = signer.seal(proof(served.demo.proof_seal)).code
    one_typo = code[:-2] + ("A" if code[-2] != "A" else "B") + code[-1]
    swapped = code[:8] + code[9] + code[8] + code[10:]
    assert swapped != code
    # Nothing listens here: a request sent would end in GatewayUnreachable, not InvalidCode.
    with Client(f"http://127.0.0.1:{free_port()}", token="t") as nowhere:
        for typo in (one_typo, swapped, "11010519491231002X", ""):
            with pytest.raises(InvalidCode):
                nowhere.verify(typo, purpose="demo")
            with pytest.raises(InvalidCode):
                nowhere.document(typo, purpose="demo")
            with pytest.raises(InvalidCode):
                nowhere.change_status(typo, Status.PLEDGED, reason="x")
            with pytest.raises(InvalidCode):
                nowhere.history(typo)


async def test_the_async_client_has_the_same_operations(served: Served) -> None:
    seal = served.demo.proof_seal
    async with (
        AsyncClient(served.url, token=served.token(Role.SIGNER)) as signer,
        AsyncClient(served.url, token=served.token(Role.VERIFIER)) as bank,
        AsyncClient(served.url, token=served.token(Role.ISSUER)) as office,
        AsyncClient(served.url) as anyone,
    ):
        sealed = await signer.seal(proof(seal))
        [second] = await signer.seal_batch([proof(seal, 1)])
        assert (await bank.verify(sealed.code, purpose="demo")).status is Status.VALID
        await office.change_status(sealed.code, Status.PLEDGED, reason="贷款质押")
        assert (await office.history(sealed.code)).status is Status.PLEDGED
        found = await bank.find_proofs(HOLDER_ID, PROOF_TYPE, purpose="demo")
        assert second.code in {p.code for p in found}
        assert sealed.code not in {p.code for p in found}  # pledged: not for reuse
        document = await bank.document(second.code, purpose="demo")
        assert verify_offline(document, await anyone.trust()).code == second.code
        assert (await bank.verify_document(document, purpose="demo")).registered
        assert await anyone.health() and (await anyone.ready()).ready
        assert "sealgate_requests" in await anyone.metrics()
        assert (await anyone.openapi())["openapi"].startswith("3.")


async def test_verify_reads_the_content_where_the_purposes_matter_grants_it(
    served: Served,
) -> None:
    seal = served.demo.proof_seal
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
    ):
        granted = signer.seal(proof(seal, n=7))
        other = signer.seal(dataclasses.replace(proof(seal), type="婚姻状况证明"))
        answer = bank.verify(granted.code, purpose="demo", fields="content")
        assert answer.content == {"结论": "经查询，未发现有犯罪记录", "n": 7}
        assert bank.verify(granted.code, purpose="demo").content is None
        with pytest.raises(Forbidden) as refused:
            bank.verify(other.code, purpose="demo", fields="content")
        assert refused.value.code == "content-not-granted"
    async with AsyncClient(served.url, token=served.token(Role.VERIFIER)) as bank_async:
        answer = await bank_async.verify(granted.code, purpose="demo", fields="content")
        assert answer.content == {"结论": "经查询，未发现有犯罪记录", "n": 7}

"""Consents and the holder's own proofs through the client library, against a real
`sealgate serve` whose city asks for the holder's consent (consent_required, the default
outside the demo) and trusts an identity platform's assertions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest

from sealgate.client import (
    AsyncClient,
    Client,
    Consent,
    Forbidden,
    Holder,
    HolderKind,
    InvalidHolderId,
    Status,
    UnknownCode,
    verify_offline,
)
from sealgate.verify.directory import Role
from tests.client.conftest import Served, served_home
from tests.client.proofs import HOLDER_ID, PROOF_TYPE, proof
from tests.gateway import test_holders
from tests.gateway.conftest import Demo
from tests.gateway.test_holders import Platform

pytestmark = pytest.mark.processes

platform = test_holders.platform  # the fixture: an identity platform the home trusts
OTHER_HOLDER = "110105194912310038"


@pytest.fixture(scope="module")
def served(demo: Demo, platform: Platform) -> Iterator[Served]:
    """The gateway of a city that asks for consent, started once the home says so."""
    config = demo.home / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert 'consent_required = "false"' in text  # the demo's purpose-only mode, turned off
    config.write_text(text.replace('consent_required = "false"', 'consent_required = "true"'))
    with served_home(demo) as gateway:
        yield gateway


def verifier_id(demo: Demo) -> str:
    return next(c.client_id for c, _ in demo.credentials.clients if c.role is Role.VERIFIER)


def in_an_hour() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def test_a_consent_granted_presented_used_up_and_revoked(served: Served) -> None:
    demo = served.demo
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.PORTAL)) as portal,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
    ):
        code = signer.seal(proof(demo.proof_seal)).code
        with pytest.raises(Forbidden) as required:
            bank.document(code)
        assert required.value.code == "consent-required"
        with pytest.raises(Forbidden):
            bank.find_proofs(HOLDER_ID, PROOF_TYPE)

        granted = portal.grant_consent(
            HOLDER_ID.lower(),
            grantee=verifier_id(demo),
            matter="demo",
            proof_types=[PROOF_TYPE],
            expires_at=in_an_hour(),
            uses=2,
        )
        assert isinstance(granted, Consent) and granted.token is not None
        assert (granted.uses_left, granted.revoked, granted.proof_types) == (
            2,
            False,
            (PROOF_TYPE,),
        )
        assert granted.token not in repr(granted)
        assert HOLDER_ID not in granted.token

        document = bank.document(code, consent_token=granted.token)
        assert verify_offline(document, bank.trust()).code == code
        found = bank.find_proofs(HOLDER_ID, PROOF_TYPE, consent_token=granted.token)
        assert code in [p.code for p in found]
        with pytest.raises(Forbidden) as spent:
            bank.document(code, consent_token=granted.token)
        assert spent.value.code == "consent-invalid" and "used up" in (spent.value.detail or "")

        listed = {c.consent_id: c for c in portal.consents(HOLDER_ID)}
        assert listed[granted.consent_id].uses_left == 0
        assert listed[granted.consent_id].token is None  # a list never shows tokens

        later = portal.grant_consent(
            HOLDER_ID,
            grantee=verifier_id(demo),
            matter="demo",
            proof_types=[PROOF_TYPE],
            expires_at=dt.date.today() + dt.timedelta(days=1),  # to that day's end
            uses=5,
        )
        assert later.expires_at > in_an_hour()
        portal.revoke_consent(later.consent_id, holder_id=HOLDER_ID)
        assert {c.consent_id: c for c in portal.consents(HOLDER_ID)}[later.consent_id].revoked
        with pytest.raises(Forbidden) as revoked:
            bank.document(code, consent_token=later.token)
        assert "revoked" in (revoked.value.detail or "")
        with pytest.raises(UnknownCode) as again:  # 404: no such consent in force
            portal.revoke_consent(later.consent_id, holder_id=HOLDER_ID)
        assert again.value.code == "unknown-consent"
        # another holder's list does not show it; a verifier may not list them
        assert portal.consents(OTHER_HOLDER) == []
        with pytest.raises(Forbidden):
            bank.consents(HOLDER_ID)
        with pytest.raises(InvalidHolderId):  # checked here: nothing is sent
            portal.grant_consent(
                "110105194912310039",
                grantee=verifier_id(demo),
                matter="x",
                proof_types=[PROOF_TYPE],
                expires_at=in_an_hour(),
                uses=1,
            )
        with pytest.raises(ValueError, match="offset"):
            portal.grant_consent(
                HOLDER_ID,
                grantee=verifier_id(demo),
                matter="x",
                proof_types=[PROOF_TYPE],
                expires_at=dt.datetime(2030, 1, 1),
                uses=1,
            )


def test_the_holder_lists_and_downloads_their_own_proofs(
    served: Served, platform: Platform
) -> None:
    demo = served.demo
    someone = Holder(HolderKind.PERSON, OTHER_HOLDER, "李四")
    with (
        Client(served.url, token=served.token(Role.SIGNER)) as signer,
        Client(served.url, token=served.token(Role.ISSUER)) as office,
        Client(served.url, token=served.token(Role.PORTAL)) as portal,
        Client(served.url, token=served.token(Role.VERIFIER)) as bank,
    ):
        mine = signer.seal(proof(demo.proof_seal)).code
        ended = signer.seal(proof(demo.proof_seal, 1)).code
        office.change_status(ended, Status.REVOKED, reason="吊销")
        theirs = signer.seal(dataclasses.replace(proof(demo.proof_seal), holder=someone)).code

        assertion = platform.assert_holder(HOLDER_ID)
        listed = {p.code: p.status for p in portal.my_proofs(holder_assertion=assertion)}
        assert listed[mine] is Status.VALID and listed[ended] is Status.REVOKED
        assert theirs not in listed
        with pytest.raises(Forbidden) as replayed:  # an assertion serves one request
            portal.my_proofs(holder_assertion=assertion)
        assert replayed.value.code == "holder-not-asserted"

        document = portal.my_document(mine, holder_assertion=platform.assert_holder(HOLDER_ID))
        assert verify_offline(document, portal.trust()).holder_id == HOLDER_ID
        with pytest.raises(UnknownCode):  # another holder's proof: as if there were none
            portal.my_document(theirs, holder_assertion=platform.assert_holder(HOLDER_ID))
        with pytest.raises(Forbidden):  # not the trusted platform
            portal.my_proofs(holder_assertion=Platform().assert_holder(HOLDER_ID))
        with pytest.raises(Forbidden):  # the portal's route only
            bank.my_proofs(holder_assertion=platform.assert_holder(HOLDER_ID))


async def test_the_async_client_has_the_same_consent_operations(
    served: Served, platform: Platform
) -> None:
    demo = served.demo
    async with (
        AsyncClient(served.url, token=served.token(Role.SIGNER)) as signer,
        AsyncClient(served.url, token=served.token(Role.PORTAL)) as portal,
        AsyncClient(served.url, token=served.token(Role.VERIFIER)) as bank,
    ):
        code = (await signer.seal(proof(demo.proof_seal, 2))).code
        granted = await portal.grant_consent(
            HOLDER_ID,
            grantee=verifier_id(demo),
            matter="demo",
            proof_types=[PROOF_TYPE],
            expires_at=in_an_hour(),
            uses=2,
        )
        assert granted.consent_id in [c.consent_id for c in await portal.consents(HOLDER_ID)]
        assert await bank.document(code, consent_token=granted.token)
        found = await bank.find_proofs(HOLDER_ID, PROOF_TYPE, consent_token=granted.token)
        assert code in [p.code for p in found]
        await portal.revoke_consent(granted.consent_id, holder_id=HOLDER_ID)
        with pytest.raises(Forbidden):
            await bank.document(code, consent_token=granted.token)
        mine = await portal.my_proofs(holder_assertion=platform.assert_holder(HOLDER_ID))
        assert code in [p.code for p in mine]
        document = await portal.my_document(
            code, holder_assertion=platform.assert_holder(HOLDER_ID)
        )
        assert verify_offline(document, await portal.trust()).code == code

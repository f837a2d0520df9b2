"""The registry's status-list indexes and consents, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from sealgate.verify.consents import Consent, ConsentNotFound, ConsentNotUsable
from sealgate.verify.registry import ProofNotFound, Registry, Status
from tests.verify.backends import change
from tests.verify.test_lifecycle import proof

NOW = 1_800_000_000.0


async def test_an_index_is_given_once_and_listed_with_its_status(registry: Registry) -> None:
    await registry.register([proof("A", expires_at=2e9), proof("B", expires_at=2e9)])
    first = await registry.status_slot("A")
    assert await registry.status_slot("A") == first
    second = await registry.status_slot("B")
    assert second > first
    with pytest.raises(ProofNotFound):
        await registry.status_slot("NOPE")
    await registry.change_status(change("B", Status.REVOKED))
    assert await registry.slots_since(0) == [(first, Status.VALID), (second, Status.REVOKED)]
    assert await registry.slots_since(first) == [(second, Status.REVOKED)]
    assert await registry.slots_of(["A", "B", "C"]) == {"A": first, "B": second}


def consent(consent_id: str, uses: int = 2, expires_at: float = NOW + 60) -> Consent:
    return Consent(
        consent_id=consent_id,
        holder_key=b"h" * 32,
        grantee="C-1",
        matter="入职",
        proof_types=("无犯罪记录证明",),
        expires_at=expires_at,
        uses_left=uses,
        created_at=NOW,
        revoked_at=None,
    )


async def test_a_consents_uses_are_taken_atomically(registry: Registry) -> None:
    await registry.add_consent(consent("CN-1", uses=3))
    taken = await asyncio.gather(
        *(registry.use_consent("CN-1", NOW) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(t, Consent) for t in taken) == 3
    assert all(isinstance(t, ConsentNotUsable) for t in taken if not isinstance(t, Consent))
    with pytest.raises(ConsentNotUsable, match="used up"):
        await registry.use_consent("CN-1", NOW)
    with pytest.raises(ConsentNotUsable, match="no such"):
        await registry.use_consent("CN-none", NOW)


async def test_a_consent_expires_and_is_revoked_by_its_holder_only(registry: Registry) -> None:
    await registry.add_consent(consent("CN-2"))
    with pytest.raises(ConsentNotUsable, match="expired"):
        await registry.use_consent("CN-2", NOW + 60)
    await registry.add_consent(consent("CN-3"))
    with pytest.raises(ConsentNotFound):
        await registry.revoke_consent("CN-3", b"x" * 32, NOW)
    await registry.revoke_consent("CN-3", b"h" * 32, NOW)
    with pytest.raises(ConsentNotUsable, match="revoked"):
        await registry.use_consent("CN-3", NOW)
    listed = await registry.consents_of(b"h" * 32)
    assert [c.consent_id for c in listed] == ["CN-2", "CN-3"]
    assert listed[1].revoked_at == NOW and listed[0].proof_types == ("无犯罪记录证明",)


async def test_a_holders_proofs_in_any_status_newest_first(registry: Registry) -> None:
    await registry.register(
        [proof("H1", issued_at=1.0), proof("H2", issued_at=2.0), proof("X", holder=b"x" * 32)]
    )
    await registry.change_status(change("H1", Status.REVOKED))
    found = await registry.proofs_of_holder(b"h" * 32)
    assert [(p.code, p.status) for p in found] == [("H2", Status.VALID), ("H1", Status.REVOKED)]

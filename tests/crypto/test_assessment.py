"""assess: a proof judged at its trusted time, refused when signed in the future or after
its key's retirement, and an answer that names every source it consulted (or did not)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sealgate.crypto import SealNotValidAtSigningTime, TrustList, VerifiedProof, verify_proof
from sealgate.crypto.assessment import CLOCK_SKEW, NOT_CHECKED_OFFLINE, TIMESTAMP, assess
from sealgate.crypto.attributes import OID_SIGNATURE_TIME_STAMP_TOKEN
from sealgate.crypto.errors import ProofError, SignedAfterRetirement, SignedInTheFuture
from tests.crypto.reseal import reseal
from tests.crypto.signers import NOW, Pki

TOKEN = bytes.fromhex("3000")


def verified(pki: Pki, proof: bytes) -> VerifiedProof:
    return verify_proof(proof, TrustList.from_der([pki.root]))


def test_nothing_consulted_says_so(pki: Pki, proof: bytes) -> None:
    judged = assess(verified(pki, proof), now=NOW, retired_at=None, retirement_source=None)
    assert judged.judged_at == NOW
    assert judged.checked() == {
        "time": "signing-time, asserted by the signer",
        "retirement": NOT_CHECKED_OFFLINE,
        "revocation": NOT_CHECKED_OFFLINE,
        "registry": NOT_CHECKED_OFFLINE,
    }


def test_a_signing_time_in_the_future_is_refused(pki: Pki) -> None:
    ahead = verified(pki, pki.proof(signing_time=NOW + CLOCK_SKEW + timedelta(seconds=1)))
    with pytest.raises(SignedInTheFuture):
        assess(ahead, now=NOW, retired_at=None, retirement_source=None)
    within = verified(pki, pki.proof(signing_time=NOW + CLOCK_SKEW))
    assess(within, now=NOW, retired_at=None, retirement_source=None)


@pytest.mark.parametrize(
    ("signed", "refused"),
    [
        (NOW - timedelta(days=1), False),  # its own proofs, before the rotation
        (NOW + CLOCK_SKEW, False),  # a gateway that had not yet seen the rotation
        (NOW + CLOCK_SKEW + timedelta(seconds=1), True),
        (NOW + timedelta(days=30), True),  # the forger's later date
    ],
)
def test_a_retired_key_signs_nothing_after_its_retirement(
    pki: Pki, signed: datetime, refused: bool
) -> None:
    proof = verified(pki, pki.proof(signing_time=signed))
    later = NOW + timedelta(days=60)
    if refused:
        with pytest.raises(SignedAfterRetirement):
            assess(proof, now=later, retired_at=NOW, retirement_source="the directory")
    else:
        judged = assess(proof, now=later, retired_at=NOW, retirement_source="the directory")
        assert judged.retirement.startswith(f"key retired {NOW.isoformat()}, signed before")
    # without a source of key states, nothing to refuse it with, and the answer says so
    unjudged = assess(proof, now=later, retired_at=NOW, retirement_source=None)
    assert unjudged.retirement == NOT_CHECKED_OFFLINE


def test_a_timestamp_decides_the_time_and_the_certificate_is_judged_then(
    pki: Pki, proof: bytes
) -> None:
    stamped = verified(pki, reseal(proof, unsigned=[(OID_SIGNATURE_TIME_STAMP_TOKEN, TOKEN)]))
    assert stamped.timestamp_token == TOKEN
    unchecked = assess(stamped, now=NOW, retired_at=None, retirement_source=None)
    assert unchecked.time_source.endswith("(its timestamp token was not checked)")

    seen: list[bytes] = []

    def stamp_at(when: datetime) -> object:
        def check(proof: VerifiedProof) -> datetime:
            seen.append(proof.signature)
            return when

        return check

    judged = assess(
        stamped, now=NOW, retired_at=None, retirement_source=None, timestamp=stamp_at(NOW)
    )
    assert (judged.judged_at, judged.time_source) == (NOW, TIMESTAMP)
    assert seen == [stamped.signature]
    # the seal certificate ends a year after NOW (tests.crypto.signers.make_seal)
    with pytest.raises(SealNotValidAtSigningTime):
        assess(
            stamped,
            now=NOW + timedelta(days=400),
            retired_at=None,
            retirement_source=None,
            timestamp=stamp_at(NOW + timedelta(days=399)),
        )
    with pytest.raises(SignedAfterRetirement):
        assess(
            stamped,
            now=NOW + timedelta(days=2),
            retired_at=NOW - timedelta(days=1),
            retirement_source="the directory",
            timestamp=stamp_at(NOW + timedelta(days=1)),
        )
    with pytest.raises(SignedInTheFuture, match="after the proof's timestamp"):
        assess(
            stamped,
            now=NOW,
            retired_at=None,
            retirement_source=None,
            timestamp=stamp_at(NOW - timedelta(hours=1)),
        )


def test_revocation_is_judged_at_the_time_judged(pki: Pki, proof: bytes) -> None:
    asked: list[tuple[bytes, datetime]] = []

    def crl(certificate: bytes, when: datetime) -> str:
        asked.append((certificate, when))
        if when > NOW - timedelta(days=1):
            raise ProofError("revoked (keyCompromise) since yesterday")
        return "CRL 7"

    with pytest.raises(ProofError, match="revoked"):
        assess(
            verified(pki, proof), now=NOW, retired_at=None, retirement_source=None, revocation=crl
        )
    assert asked == [(pki.seal, NOW)]
    earlier = verified(pki, pki.proof(signing_time=NOW - timedelta(days=2)))
    judged = assess(earlier, now=NOW, retired_at=None, retirement_source=None, revocation=crl)
    assert judged.checked()["revocation"] == "CRL 7"

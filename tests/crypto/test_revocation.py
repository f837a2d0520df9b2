"""The root's CRLs and the one revocation check: built and signed as the root's token
would, read back by OpenSSL and by :func:`check_revocation`, and judged by the rule of
docs/design.md §7.2 (a compromise date honoured only for a trusted time)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest

from sealgate.crypto import certificate_pem
from sealgate.crypto.certificates import certificate_serial
from sealgate.crypto.crl import RevokedEntry, prepare_crl
from sealgate.crypto.errors import RevocationUnknown, SealRevoked
from sealgate.crypto.revocation import Revocations, check_revocation
from sealgate.crypto.verification import TrustList
from tests.crypto.conftest import OpenSSL
from tests.crypto.signers import NOW, Pki, make_pki

DAY = timedelta(days=1)


def crl_of(
    pki: Pki,
    *entries: RevokedEntry,
    this_update: datetime = NOW,
    next_update: datetime = NOW + DAY,
) -> bytes:
    pending = prepare_crl(
        pki.root, entries, number=7, this_update=this_update, next_update=next_update
    )
    return pending.finish(pki.root_signer.sign(pending.digest))


def revoked(pki: Pki, reason: str, at: datetime, since: datetime | None = None) -> RevokedEntry:
    return RevokedEntry(certificate_serial(pki.seal), at, reason, since)


def test_openssl_reads_the_crl_and_verifies_it_against_the_root(pki: Pki, openssl: OpenSSL) -> None:
    der = crl_of(pki, revoked(pki, "keyCompromise", NOW - DAY, NOW - 3 * DAY))
    shown = openssl.run(
        "crl", "-inform", "DER", "-in", openssl.write("c.der", der), "-noout", "-text",
        "-CAfile", openssl.write("root.pem", certificate_pem(pki.root)),
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert b"verify OK" in shown.stderr
    text = shown.stdout.decode()
    assert "Key Compromise" in text and "Invalidity Date" in text
    assert f"{certificate_serial(pki.seal):X}" in text.replace(":", "").upper()
    assert "X509v3 CRL Number" in text and "Authority Key Identifier" in text


def test_a_seal_not_on_the_crl_passes_and_the_check_says_what_it_used(
    pki: Pki, trust: TrustList
) -> None:
    revocations = Revocations.from_crl(crl_of(pki), trust, now=NOW)
    check = check_revocation(pki.seal, revocations, NOW, time_trusted=False)
    assert check.describe() == {
        "source": "crl",
        "as_of": NOW.isoformat(),
        "judged_at": NOW.isoformat(),
        "crl_number": 7,
        "next_update": (NOW + DAY).isoformat(),
    }


def test_a_compromise_date_is_honoured_only_for_a_trusted_time(pki: Pki, trust: TrustList) -> None:
    since = NOW - 10 * DAY
    crl = crl_of(pki, revoked(pki, "keyCompromise", NOW - DAY, since))
    revocations = Revocations.from_crl(crl, trust, now=NOW)
    # A timestamp (or the registry's record) before the compromise: the proof stands.
    check = check_revocation(pki.seal, revocations, since - DAY, time_trusted=True)
    assert check.describe()["revoked_after"] == since.isoformat()
    # After it: revoked, even though the revocation itself came later.
    with pytest.raises(SealRevoked, match="keyCompromise"):
        check_revocation(pki.seal, revocations, since + DAY, time_trusted=True)
    # A signing time the signer wrote proves nothing against a stolen key.
    with pytest.raises(SealRevoked, match="only a trusted time"):
        check_revocation(pki.seal, revocations, since - DAY, time_trusted=False)


def test_a_superseded_seal_keeps_what_it_sealed_before_its_revocation(
    pki: Pki, trust: TrustList
) -> None:
    at = NOW - DAY
    revocations = Revocations.from_crl(crl_of(pki, revoked(pki, "superseded", at)), trust, now=NOW)
    check_revocation(pki.seal, revocations, at - timedelta(seconds=1), time_trusted=False)
    with pytest.raises(SealRevoked, match="superseded"):
        check_revocation(pki.seal, revocations, at, time_trusted=False)


def test_only_a_current_crl_of_a_trusted_root_is_taken(pki: Pki, trust: TrustList) -> None:
    other = make_pki()
    with pytest.raises(RevocationUnknown, match="not issued by a trusted root"):
        Revocations.from_crl(crl_of(other), trust, now=NOW)
    # Same issuer name, another key: the signature does not hold.
    forged = crl_of(pki)
    flipped = forged[:-3] + bytes([forged[-3] ^ 1]) + forged[-2:]
    with pytest.raises(RevocationUnknown):
        Revocations.from_crl(flipped, trust, now=NOW)
    with pytest.raises(RevocationUnknown, match="out of date"):
        Revocations.from_crl(crl_of(pki), trust, now=NOW + 2 * DAY)
    with pytest.raises(RevocationUnknown, match="not current before"):
        Revocations.from_crl(crl_of(pki), trust, now=NOW - DAY)
    with pytest.raises(RevocationUnknown, match="not a DER"):
        Revocations.from_crl(secrets.token_bytes(64), trust, now=NOW)


def test_revocations_speak_only_for_their_own_roots_seals(pki: Pki, trust: TrustList) -> None:
    other = make_pki(validity=(NOW - DAY, NOW + DAY))
    revocations = Revocations.from_crl(crl_of(pki), trust, now=NOW)
    with pytest.raises(RevocationUnknown, match="issuer"):
        check_revocation(other.seal, revocations, NOW, time_trusted=True)

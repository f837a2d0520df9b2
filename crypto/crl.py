"""The city root's certificate revocation lists (RFC 5280 §5), two-phase like certificates.

:func:`prepare_crl` builds the TBSCertList of every revoked seal certificate and hands
back a :class:`~sealgate.crypto.certificates.PendingCertificate` (a CRL is signed exactly
as a certificate is: SEQUENCE of the TBS, the algorithm, the signature); the root's token
signs its digest. Each entry carries its reason and, when the key was compromised before
it was revoked, an invalidityDate: proofs timestamped before that date stay valid
(:mod:`sealgate.crypto.revocation`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core, crl, x509

from sealgate.crypto import _der
from sealgate.crypto.algorithms import load_public_key, signature_algorithm_of
from sealgate.crypto.certificates import (
    PendingCertificate,
    _key_identifier,
    _load,
    _time,
)
from sealgate.crypto.errors import ContentError

__all__ = ["CRL_REASONS", "RevokedEntry", "prepare_crl"]

#: RFC 5280 CRLReason names (as operators type them) → asn1crypto's.
CRL_REASONS = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
}


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One revoked certificate: its serial, when, why (an RFC 5280 reason name) and since
    when its key is held compromised (``None``: from the revocation on)."""

    serial: int
    revoked_at: datetime
    reason: str
    invalid_since: datetime | None = None


def prepare_crl(
    issuer_certificate_der: bytes,
    entries: Iterable[RevokedEntry],
    *,
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> PendingCertificate:
    """A v2 CRL of ``entries`` by the root whose certificate is given, awaiting its
    signature: CRL number and authority key identifier (RFC 5280 §5.2 requires both)."""
    if not 0 <= number < 1 << 159:
        raise ContentError("a CRL number is a non-negative integer of at most 20 octets")
    if _der.as_utc(next_update) <= _der.as_utc(this_update):
        raise ContentError("next_update must be later than this_update")
    issuer = _load(issuer_certificate_der)
    tbs_cert = issuer["tbs_certificate"]
    spki = tbs_cert["subject_public_key_info"]
    algorithm = signature_algorithm_of(load_public_key(spki.dump()))
    revoked = [_entry(e) for e in sorted(entries, key=lambda e: e.serial)]
    fields: dict[str, object] = {
        "version": "v2",
        "signature": x509.SignedDigestAlgorithm.load(algorithm.algorithm_identifier_der),
        "issuer": tbs_cert["subject"],
        "this_update": _time(this_update),
        "next_update": _time(next_update),
        "crl_extensions": [
            crl.TBSCertListExtension({"extn_id": "crl_number", "extn_value": number}),
            crl.TBSCertListExtension(
                {
                    "extn_id": "authority_key_identifier",
                    "extn_value": {
                        "key_identifier": issuer.key_identifier or _key_identifier(spki)
                    },
                }
            ),
        ],
    }
    if revoked:  # absent, not empty, when nothing is revoked (RFC 5280 §5.1.2.6)
        fields["revoked_certificates"] = revoked
    tbs: bytes = crl.TbsCertList(fields).dump()
    return PendingCertificate(tbs, algorithm, spki.dump())


def _entry(entry: RevokedEntry) -> crl.RevokedCertificate:
    reason = CRL_REASONS.get(entry.reason)
    if reason is None:
        raise ContentError(f"unknown revocation reason {entry.reason!r}")
    extensions = [crl.CRLEntryExtension({"extn_id": "crl_reason", "extn_value": reason})]
    if entry.invalid_since is not None:
        extensions.append(
            crl.CRLEntryExtension(
                {
                    "extn_id": "invalidity_date",
                    "extn_value": core.GeneralizedTime(_der.as_utc(entry.invalid_since)),
                }
            )
        )
    return crl.RevokedCertificate(
        {
            "user_certificate": entry.serial,
            "revocation_date": _time(entry.revoked_at),
            "crl_entry_extensions": extensions,
        }
    )

"""Is a seal certificate revoked for a proof made at a given time? Pure and offline.

The one revocation check every verifier calls (``sealgate verify-file --crl``, the
gateway's document check): :class:`Revocations` is what is known of the root's revoked
seal certificates, read from a CRL the root signed (:meth:`Revocations.from_crl`) or from
the directory's own record of it (:meth:`Revocations.from_entries`), and
:func:`check_revocation` judges one seal certificate at one time.

The rule (docs/design.md §7.2): a certificate revoked for a compromise (keyCompromise,
or no reason given) is held compromised from its invalidityDate (else its revocation
date); a proof stands only if a *trusted* time (an RFC 3161 timestamp, the registry's
record of issue) puts it before that. A self-asserted signing time proves nothing
against a stolen key, which can write any. For the other reasons (superseded,
affiliationChanged, cessationOfOperation) the key was not stolen: a proof signed before
the revocation stands, one after it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from sealgate.crypto._der import as_utc
from sealgate.crypto.crl import RevokedEntry
from sealgate.crypto.errors import RevocationUnknown, SealRevoked
from sealgate.crypto.verification import TrustList

__all__ = ["RevocationVerdict", "Revocations", "check_revocation", "revocation_check"]

#: Reasons under which the key itself may be in other hands.
_COMPROMISE = frozenset({"keyCompromise", "unspecified"})
#: cryptography's ReasonFlags value → the RFC 5280 name.
_REASON_NAMES = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
}
#: Clocks disagree: a CRL issued this far in a verifier's future is still taken.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Revocations:
    """The revoked seal certificates of one root, by serial, and where that is known from.

    ``source`` is ``"crl"`` (a CRL the root signed: ``number``, ``this_update`` and
    ``next_update`` say which) or ``"directory"`` (the seal directory, current as of
    ``this_update``).
    """

    # The roots' subject key identifiers (their seals' authority key ids): the one root
    # that signed a CRL, or every root the directory trusts (it records all revocations).
    issuer_key_ids: frozenset[bytes]
    entries: Mapping[int, RevokedEntry]
    source: str
    this_update: datetime
    next_update: datetime | None = None
    number: int | None = None

    @classmethod
    def from_crl(cls, der: bytes, trust: TrustList, *, now: datetime | None = None) -> Revocations:
        """A CRL's entries, once it is shown to be a current CRL signed by a trusted root.

        Fails closed (:class:`RevocationUnknown`): not a CRL, no trusted root issued it,
        its signature does not hold, it is not yet current or out of date at ``now``.
        """
        now = as_utc(now or datetime.now(UTC))
        try:
            crl = x509.load_der_x509_crl(der)
            issuer = crl.issuer.public_bytes()
        except (ValueError, TypeError) as exc:
            raise RevocationUnknown("the CRL is not a DER certificate revocation list") from exc
        signers = [root for root in trust.issuers_named(issuer) if _signed_by(crl, trust, root)]
        if not signers:
            raise RevocationUnknown("the CRL was not issued by a trusted root")
        this_update = crl.last_update_utc
        next_update = crl.next_update_utc
        if this_update > now + CLOCK_SKEW:
            raise RevocationUnknown(f"the CRL is not current before {this_update.isoformat()}")
        if next_update is None or next_update < now:
            when = "never" if next_update is None else next_update.isoformat()
            raise RevocationUnknown(f"the CRL is out of date: its next update was due {when}")
        try:
            number = int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
            entries = {r.serial_number: _entry(r) for r in crl}
        except (ValueError, x509.ExtensionNotFound) as exc:
            raise RevocationUnknown(f"the CRL is unusable: {exc}") from exc
        key_id = _key_id(x509.load_der_x509_certificate(signers[0]))
        return cls(
            frozenset({key_id}), MappingProxyType(entries), "crl", this_update, next_update, number
        )

    @classmethod
    def from_entries(
        cls, roots: Iterable[bytes], entries: Iterable[RevokedEntry], as_of: datetime
    ) -> Revocations:
        """What the directory records of its roots' revocations, current as of ``as_of``
        (serials are 127 random bits: one table serves every root)."""
        key_ids = frozenset(_key_id(x509.load_der_x509_certificate(der)) for der in roots)
        by_serial = MappingProxyType({e.serial: e for e in entries})
        return cls(key_ids, by_serial, "directory", as_utc(as_of))


@dataclass(frozen=True, slots=True)
class RevocationVerdict:
    """What one check found: not revoked for the time judged, according to ``source``."""

    source: str
    at: datetime
    time_trusted: bool
    this_update: datetime
    next_update: datetime | None = None
    number: int | None = None
    # Revoked, but after the time judged (a proof made before a revocation stands).
    revoked_later: RevokedEntry | None = field(default=None)

    def describe(self) -> dict[str, Any]:
        """For an answer's "what was checked": the revocation source and its currency."""
        out: dict[str, Any] = {
            "source": self.source,
            "as_of": self.this_update.isoformat(),
            "judged_at": self.at.isoformat(),
        }
        if self.number is not None:
            out["crl_number"] = self.number
        if self.next_update is not None:
            out["next_update"] = self.next_update.isoformat()
        if self.revoked_later is not None:
            out["revoked_after"] = _effective(self.revoked_later).isoformat()
        return out

    def summary(self) -> str:
        """One line for an answer's ``checked.revocation``: the verdict and its source."""
        if self.source == "crl":
            where = f"CRL {self.number} of {self.this_update.isoformat()}"
            if self.next_update is not None:
                where += f", next update {self.next_update.isoformat()}"
        else:
            where = f"the seal directory as of {self.this_update.isoformat()}"
        if self.revoked_later is None:
            return f"not revoked ({where})"
        later = _effective(self.revoked_later).isoformat()
        return f"revoked only as of {later}, after the time judged ({where})"


def revocation_check(
    revocations: Revocations, *, vouched_time: datetime | None = None
) -> Callable[[bytes, datetime, bool], str]:
    """:func:`check_revocation` as :func:`sealgate.crypto.assessment.assess` calls it
    (its ``RevocationCheck``). ``vouched_time``: a time the caller vouches for (the
    registry's record of a registered proof's issue), judged at instead, as trusted."""

    def check(seal_certificate_der: bytes, at: datetime, time_trusted: bool) -> str:
        if vouched_time is not None:
            at, time_trusted = vouched_time, True
        return check_revocation(
            seal_certificate_der, revocations, at, time_trusted=time_trusted
        ).summary()

    return check


def check_revocation(
    seal_certificate_der: bytes, revocations: Revocations, at: datetime, *, time_trusted: bool
) -> RevocationVerdict:
    """Judge a seal certificate at ``at`` (a trusted time: a timestamp's, the registry's
    record of issue; or a self-asserted signing time, ``time_trusted=False``).

    Raises :class:`SealRevoked`, or :class:`RevocationUnknown` for a certificate another
    root issued (these revocations cannot speak for it).
    """
    certificate = x509.load_der_x509_certificate(seal_certificate_der)
    try:
        authority = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        issued_by = authority.value.key_identifier
    except x509.ExtensionNotFound:
        issued_by = None
    # By key, not name: a re-keyed city root keeps its name, and its CRL cannot speak for
    # the seals the other key certified.
    if issued_by not in revocations.issuer_key_ids:
        raise RevocationUnknown("the revocation list is not of the seal certificate's issuer")
    at = as_utc(at)
    entry = revocations.entries.get(certificate.serial_number)
    if entry is not None:
        effective = _effective(entry)
        compromised = entry.reason in _COMPROMISE
        if at >= effective or (compromised and not time_trusted):
            why = f"revoked ({entry.reason}) as of {effective.isoformat()}"
            if compromised and not time_trusted and at < effective:
                why += "; only a trusted time could show the proof was made before"
            raise SealRevoked(f"the seal certificate was {why}")
    return RevocationVerdict(
        source=revocations.source,
        at=at,
        time_trusted=time_trusted,
        this_update=revocations.this_update,
        next_update=revocations.next_update,
        number=revocations.number,
        revoked_later=entry,
    )


def _effective(entry: RevokedEntry) -> datetime:
    """From when the certificate no longer vouches: the compromise date if one is known
    (and earlier), else the revocation."""
    if entry.invalid_since is not None and entry.invalid_since < entry.revoked_at:
        return entry.invalid_since
    return entry.revoked_at


def _key_id(root: x509.Certificate) -> bytes:
    """A root's subject key identifier (sealgate's roots all carry one)."""
    try:
        return root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise RevocationUnknown("the root certificate has no subject key identifier") from None


def _signed_by(crl: x509.CertificateRevocationList, trust: TrustList, root_der: bytes) -> bool:
    root = trust.certificate(root_der)
    if root is None:
        return False
    try:
        return crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False


def _entry(revoked: x509.RevokedCertificate) -> RevokedEntry:
    reason = "unspecified"
    invalid_since = None
    for extension in revoked.extensions:
        value = extension.value
        if isinstance(value, x509.CRLReason):
            reason = _REASON_NAMES.get(value.reason, "unspecified")
        elif isinstance(value, x509.InvalidityDate):
            invalid_since = value.invalidity_date_utc
    return RevokedEntry(revoked.serial_number, revoked.revocation_date_utc, reason, invalid_since)

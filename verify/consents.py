"""Holders' consents (益阳 规程 第十一条, 第二十条): who may read which of a holder's proofs,
for which matter (事项), until when and how many times.

A consent names the holder only by the registry's keyed hash (:class:`HolderKeys`), the
grantee by its client id, and the proof types it covers. Each use takes one of its uses
atomically in the registry (:meth:`sealgate.verify.registry.Registry.use_consent`), so two
concurrent downloads cannot both spend the last one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sealgate.errors import Error
from sealgate.verify.registry import RegistryError


class ConsentError(RegistryError):
    """Base of the consents' refusals."""


class ConsentNotUsable(ConsentError):
    """The consent is unknown, revoked, expired or used up (the message says which)."""


class ConsentNotFound(ConsentError):
    """No consent of that id for that holder."""


class ConsentDoesNotCover(Error):
    """The consent is not for this holder, grantee or proof type."""


@dataclass(frozen=True, slots=True)
class Consent:
    consent_id: str
    holder_key: bytes
    grantee: str  # the client id of the verifier it is given to
    matter: str  # 事项: what the proofs may be used for
    proof_types: tuple[str, ...]
    expires_at: float
    uses_left: int
    created_at: float
    revoked_at: float | None

    def covers(self, *, holder_key: bytes, grantee: str, proof_type: str) -> None:
        """Raise :class:`ConsentDoesNotCover` unless this consent covers the read."""
        if holder_key != self.holder_key:
            raise ConsentDoesNotCover("the consent is another holder's")
        if grantee != self.grantee:
            raise ConsentDoesNotCover("the consent was given to another client")
        if proof_type not in self.proof_types:
            raise ConsentDoesNotCover("the consent does not cover this type of proof")

    def view(self) -> dict[str, Any]:
        return {
            "consent_id": self.consent_id,
            "grantee": self.grantee,
            "matter": self.matter,
            "proof_types": list(self.proof_types),
            "expires_at": self.expires_at,
            "uses_left": self.uses_left,
            "revoked": self.revoked_at is not None,
        }


CONSENT_COLUMNS = (
    "consent_id, holder_key, grantee, matter, proof_types, expires_at, uses_left,"
    " created_at, revoked_at"
)


def consent_row(consent: Consent) -> tuple[Any, ...]:
    return (
        consent.consent_id,
        consent.holder_key,
        consent.grantee,
        consent.matter,
        json.dumps(list(consent.proof_types), ensure_ascii=False),
        consent.expires_at,
        consent.uses_left,
        consent.created_at,
        consent.revoked_at,
    )


def consent_from_row(row: Any) -> Consent:
    return Consent(
        consent_id=str(row[0]),
        holder_key=bytes(row[1]),
        grantee=str(row[2]),
        matter=str(row[3]),
        proof_types=tuple(json.loads(row[4])),
        expires_at=float(row[5]),
        uses_left=int(row[6]),
        created_at=float(row[7]),
        revoked_at=None if row[8] is None else float(row[8]),
    )


def why_not_usable(consent: Consent | None, now: float) -> ConsentNotUsable:
    if consent is None:
        return ConsentNotUsable("no such consent")
    if consent.revoked_at is not None:
        return ConsentNotUsable("the holder revoked this consent")
    if consent.expires_at <= now:
        return ConsentNotUsable("this consent has expired")
    return ConsentNotUsable("this consent has been used up")


@dataclass(frozen=True, slots=True)
class ConsentQueries:
    insert: str
    select: str
    use: str
    of_holder: str
    revoke: str

    @classmethod
    def written_with(cls, p: Any) -> ConsentQueries:
        return cls(
            insert=f"INSERT INTO consents ({CONSENT_COLUMNS}) VALUES"  # noqa: S608
            f" ({', '.join(p(n) for n in range(1, 10))})",
            select=f"SELECT {CONSENT_COLUMNS} FROM consents WHERE consent_id = {p(1)}",  # noqa: S608
            use=(
                "UPDATE consents SET uses_left = uses_left - 1"  # noqa: S608
                f" WHERE consent_id = {p(1)} AND uses_left > 0 AND revoked_at IS NULL"
                f" AND expires_at > {p(2)}"
            ),
            of_holder=(
                f"SELECT {CONSENT_COLUMNS} FROM consents WHERE holder_key = {p(1)}"  # noqa: S608
                " ORDER BY created_at"
            ),
            revoke=(
                f"UPDATE consents SET revoked_at = {p(1)} WHERE consent_id = {p(2)}"  # noqa: S608
                f" AND holder_key = {p(3)} AND revoked_at IS NULL"
            ),
        )

"""The gateway's answers as typed objects, and the request to seal a proof.

Names and fields follow the gateway's JSON (docs/design.md §6.2, ``/openapi.json``); times
are timezone-aware datetimes, proof dates stay as the issuing office wrote them (a date,
or a date-time with its offset). Statuses are :class:`sealgate.verify.registry.Status`,
the registry's own vocabulary.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.fields import Fields
from sealgate.verify.holders import HolderKind, mask_id, mask_name
from sealgate.verify.registry import Status

__all__ = [
    "DataOwner",
    "DocumentCheck",
    "Endorsement",
    "GatewayKey",
    "History",
    "Holder",
    "HolderKind",
    "Issuer",
    "MaskedHolder",
    "ProofRequest",
    "Readiness",
    "SealedProof",
    "Status",
    "StatusChange",
    "TrustDocument",
    "TrustedSeal",
    "Unit",
    "Verification",
]


# --- what a client sends ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """Whom a proof is about: ``kind`` person (身份证号) or org (统一社会信用代码)."""

    kind: HolderKind
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ProofRequest:
    """One proof to seal (``POST /v1/certificates``)."""

    seal_id: str
    type: str
    holder: Holder
    content: Mapping[str, Any]
    valid_from: str
    valid_until: str | None = None
    # No endorsement: the gateway fills one from a verification request it answers, and
    # refuses a typed one (422 endorsement-not-typed).

    def to_json(self) -> dict[str, Any]:
        holder = {"kind": self.holder.kind.value, "id": self.holder.id, "name": self.holder.name}
        return {
            "type": self.type,
            **proof_body(self.seal_id, holder, self.content, self.valid_from, self.valid_until),
        }


def proof_body(
    seal_id: str,
    holder: Mapping[str, str],
    content: Mapping[str, Any],
    valid_from: str,
    valid_until: str | None,
) -> dict[str, Any]:
    """What a proof to seal says, its type apart (a request's answer has it filled)."""
    body: dict[str, Any] = {
        "seal_id": seal_id,
        "holder": dict(holder),
        "content": dict(content),
        "valid_from": valid_from,
    }
    if valid_until is not None:
        body["valid_until"] = valid_until
    return body


# --- reading answers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """An office (单位): the issuer of a proof, the requester or responder of a request."""

    unit_name: str
    unit_code: str  # 统一社会信用代码

    @classmethod
    def read(cls, f: Fields) -> Unit:
        return cls(f.text("unit_name"), f.text("unit_code"))


Issuer = Unit


@dataclass(frozen=True, slots=True)
class DataOwner:
    """The office whose data a platform seal's proof states, and which alone changes its
    status; ``unit_name`` when the directory knows the office by a seal of its own."""

    unit_code: str
    unit_name: str | None = None

    @classmethod
    def read(cls, f: Fields | None) -> DataOwner | None:
        return None if f is None else cls(f.text("unit_code"), f.maybe_text("unit_name"))


@dataclass(frozen=True, slots=True)
class Endorsement:
    """Who extracted a request's answer (the requesting office), who verified it (the
    responding office) and when, as its seal covers them (宁波 第十四条)."""

    extracting_unit: str | None
    verifying_unit: str | None
    extracted_at: dt.datetime | None

    @classmethod
    def read(cls, f: Fields | None) -> Endorsement | None:
        if f is None:
            return None
        return cls(
            f.maybe_text("extracting_unit"),
            f.maybe_text("verifying_unit"),
            f.maybe_time("extracted_at"),
        )


@dataclass(frozen=True, slots=True)
class MaskedHolder:
    """The holder as a checker sees it: ``张*``, ``1101**********002X``."""

    kind: HolderKind
    name: str
    id: str

    @classmethod
    def read(cls, f: Fields) -> MaskedHolder:
        kind = f.text("kind")
        try:
            return cls(HolderKind(kind), f.text("name"), f.text("id"))
        except ValueError:
            raise UnexpectedAnswer(f"unknown holder kind {kind!r}") from None

    def could_be(self, holder_id: str, name: str | None = None) -> bool:
        """Whether the person or organisation in front of you (their full identity number,
        and name) masks to this holder, as the gateway masks. A masked match narrows the
        candidates; the sealed document (:meth:`Client.document`) holds the full number.
        """
        if mask_id(holder_id.strip().upper()) != self.id:
            return False
        return name is None or mask_name(name) == self.name


def status_fields(f: Fields) -> dict[str, Any]:
    """What every status view of a proof says (a verification, a holder's own proof, a
    scanned QR code's check), the holder apart: it is shown differently in each."""
    return {
        "code": f.text("code"),
        "status": f.status("status"),
        "type": f.text("type"),
        "issuer": Unit.read(f.obj("issuer")),
        "valid_from": f.text("valid_from"),
        "valid_until": f.maybe_text("valid_until"),
        "issued_at": f.time("issued_at"),
        "status_changed_at": f.time("status_changed_at"),
        "checked_at": f.time("checked_at"),
        "superseded_by": f.maybe_text("superseded_by"),
        "status_as_of": f.maybe_time("status_as_of"),
        "status_label": f.maybe_text("status_label"),
        "seal_kind": f.maybe_text("seal_kind"),
        "data_owner": DataOwner.read(f.maybe_obj("data_owner")),
        "endorsement": Endorsement.read(f.maybe_obj("endorsement")),
    }


@dataclass(frozen=True, slots=True)
class Verification:
    """A code's current status as a verifier sees it (``GET /v1/verify/{code}``)."""

    code: str
    status: Status
    type: str
    issuer: Unit
    holder: MaskedHolder
    valid_from: str
    valid_until: str | None
    issued_at: dt.datetime
    status_changed_at: dt.datetime
    checked_at: dt.datetime
    superseded_by: str | None = None
    # Set when the gateway answered from a copy through a registry outage (design §11).
    status_as_of: dt.datetime | None = None
    # The status in Chinese, when asked for (Accept-Language: zh-CN).
    status_label: str | None = None
    # The kind of seal that sealed it: proof (电子证明专用章) or verification (查询核验专用章).
    seal_kind: str | None = None
    # A platform seal's proof: the office whose data it states.
    data_owner: DataOwner | None = None
    # A verification request's answer: who extracted, who verified, when.
    endorsement: Endorsement | None = None
    # In a batch check that named the holder: whether the proof is that holder's.
    holder_match: bool | None = None
    # Asked with fields="content": the sealed content, of the fields the purpose's matter
    # may read (design §17); the holder's identity number masked in it.
    content: dict[str, Any] | None = None

    @classmethod
    def read(cls, f: Fields) -> Verification:
        return cls(
            **status_fields(f),
            holder=MaskedHolder.read(f.obj("holder")),
            holder_match=f.maybe_flag("holder_match"),
            content=f.maybe_object("content"),
        )

    @classmethod
    def parse(cls, body: Any) -> Verification:
        return cls.read(Fields(body, "verification"))

    @classmethod
    def parse_list(cls, body: Any, what: str) -> list[Verification]:
        """The ``items`` of a list answer (a reuse lookup, a holder's own proofs)."""
        return [cls.read(item) for item in Fields(body, what).items("items")]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of a proof's history: who changed it, when and why."""

    from_status: Status
    to_status: Status
    reason: str
    by: str  # the issuing client's id
    at: dt.datetime
    superseded_by: str | None = None

    @classmethod
    def read(cls, f: Fields) -> StatusChange:
        return cls(
            from_status=f.status("from"),
            to_status=f.status("to"),
            reason=f.text("reason"),
            by=f.text("by"),
            at=f.time("at"),
            superseded_by=f.maybe_text("superseded_by"),
        )


@dataclass(frozen=True, slots=True)
class History:
    """The issuing office's view: the current status and every change, oldest first."""

    current: Verification
    changes: tuple[StatusChange, ...]

    @property
    def status(self) -> Status:
        return self.current.status

    @classmethod
    def parse(cls, body: Any) -> History:
        f = Fields(body, "history")
        return cls(Verification.read(f), tuple(StatusChange.read(c) for c in f.items("history")))


def decode_document(f: Fields) -> bytes:
    """A sealed proof carried in an answer (``document``, base64 of the CMS DER)."""
    try:
        return base64.b64decode(f.text("document"), validate=True)
    except ValueError:
        raise UnexpectedAnswer("document is not base64") from None


@dataclass(frozen=True, slots=True)
class SealedProof:
    """A proof sealed and registered (the 201 of ``POST /v1/certificates``)."""

    code: str
    status: Status
    issued_at: dt.datetime
    seal_id: str
    document: bytes = field(repr=False)  # the sealed proof, CMS DER
    replayed: bool = False  # the answer to an earlier request with the same key

    @classmethod
    def read(cls, f: Fields, replayed: bool) -> SealedProof:
        return cls(
            code=f.text("code"),
            status=f.status("status"),
            issued_at=f.time("issued_at"),
            seal_id=f.text("seal_id"),
            document=decode_document(f),
            replayed=replayed,
        )

    @classmethod
    def parse(cls, body: Any, replayed: bool = False) -> SealedProof:
        return cls.read(Fields(body, "proof"), replayed)

    @classmethod
    def parse_batch(cls, body: Any, replayed: bool = False) -> list[SealedProof]:
        return [cls.read(item, replayed) for item in Fields(body, "batch").items("items")]


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """A presented sealed proof checked by the gateway (``POST /v1/verify/document``)."""

    code: str
    seal_id: str
    issuer: Issuer
    signing_time: dt.datetime  # as the signer asserts it
    judged_at: dt.datetime  # the time it was judged at (its timestamp's, else signing_time)
    registered: bool  # its signed content and attributes are those registered under its code
    status: Status | None  # its code's registered status (None: the code is not registered)
    checked: Mapping[str, str]  # time, retirement, revocation, registry: what each stood on
    checked_at: dt.datetime
    seal_kind: str | None = None  # when the directory knows the seal
    endorsement: Endorsement | None = None  # as the proof's seal covers it

    @classmethod
    def parse(cls, body: Any) -> DocumentCheck:
        f = Fields(body, "document check")
        checked = f.obj("checked")
        return cls(
            code=f.text("code"),
            seal_id=f.text("seal_id"),
            issuer=Issuer.read(f.obj("issuer")),
            signing_time=f.time("signing_time"),
            judged_at=f.time("judged_at"),
            registered=f.flag("registered"),
            status=f.maybe_word("status", Status),
            checked={name: checked.text(name) for name in checked.names()},
            checked_at=f.time("checked_at"),
            seal_kind=f.maybe_text("seal_kind"),
            endorsement=Endorsement.read(f.maybe_obj("endorsement")),
        )


@dataclass(frozen=True, slots=True)
class TrustedSeal:
    """A seal key the gateway's trust document lists, with its certificate (PEM)."""

    seal_id: str
    kind: str  # proof (电子证明专用章) or verification (查询核验专用章)
    unit_name: str
    unit_code: str
    version: int  # of the seal's key
    state: str  # active or retired
    not_before: dt.datetime
    not_after: dt.datetime
    retired_at: dt.datetime | None  # when the key stopped sealing
    certificate: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A key the gateway signs QR payloads, status lists or consents with (COSE, EC P-256),
    as the trust document lists it."""

    kid: str  # base64url: the first 8 bytes of SHA-256 of the key's SubjectPublicKeyInfo
    uses: tuple[str, ...]  # what it may sign: qr, status-list, consent
    public_key: str = field(repr=False)  # PEM


@dataclass(frozen=True, slots=True)
class TrustDocument:
    """``GET /v1/trust``: the city roots (PEM), the seals' keys and the gateway's keys, as
    the root signed them (``version`` grows with each publication; a document published
    before the gateway's keys were in it has none). The signature is checked by
    :func:`sealgate.crypto.trust_document.read_trust_document` on the answer's bytes
    against roots one trusts already; this parse does not check it."""

    version: int
    issued_at: dt.datetime
    roots: tuple[str, ...]
    seals: tuple[TrustedSeal, ...]
    keys: tuple[GatewayKey, ...] = ()

    @property
    def roots_pem(self) -> str:
        """The roots as one PEM bundle, as ``openssl cms -CAfile`` and
        :func:`sealgate.client.verify_offline` take it."""
        return "".join(self.roots)

    @classmethod
    def parse(cls, body: Any) -> TrustDocument:
        f = Fields(body, "trust").obj("document")
        seals = tuple(
            TrustedSeal(
                seal_id=s.text("seal_id"),
                kind=s.text("kind"),
                unit_name=s.text("unit_name"),
                unit_code=s.text("unit_code"),
                version=s.number("version"),
                state=s.text("state"),
                not_before=s.time("not_before"),
                not_after=s.time("not_after"),
                retired_at=s.maybe_time("retired_at"),
                certificate=s.text("certificate"),
            )
            for s in f.items("seals")
        )
        keys = tuple(
            GatewayKey(k.text("kid"), tuple(k.texts("use")), k.text("public_key"))
            for k in (f.items("keys") if "keys" in f.raw() else ())
        )
        return cls(f.number("version"), f.time("issued_at"), tuple(f.texts("roots")), seals, keys)


@dataclass(frozen=True, slots=True)
class Readiness:
    """``GET /readyz``: whether this gateway serves, and each component's check."""

    ready: bool
    checks: Mapping[str, str]

    @classmethod
    def parse(cls, body: Any) -> Readiness:
        f = Fields(body, "readiness")
        checks = f.obj("checks")
        return cls(f.flag("ready"), {name: checks.text(name) for name in checks.names()})

"""亮码扫码 and the public check as the client reads them: a proof's QR code for its holder,
a scanned payload's online check, the signed status lists, and the check anyone may make."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.fields import Fields
from sealgate.client.models import (
    DataOwner,
    Endorsement,
    HolderKind,
    Unit,
    status_fields,
)
from sealgate.verify.registry import Status

__all__ = ["PublicCheck", "QrCheck", "QrCode", "ShownHolder", "StatusList"]

# The text every QR payload starts with (sealgate.crypto.qr_payload.PREFIX, which needs
# cbor2: the client does not read payloads, only tells them from codes).
QR_PREFIX = "SG1:"


@dataclass(frozen=True, slots=True)
class QrCode:
    """A proof's QR code (``GET /v1/certificates/{code}/qr``): ``payload`` is the text to
    render; the dynamic variant expires (``expires_at``), the static one does not. A
    verifier offline reads the proof's status at ``status_index`` of the list at
    ``status_list_uri`` (:meth:`Client.status_list`)."""

    payload: str = field(repr=False)
    code: str
    issued_at: dt.datetime
    expires_at: dt.datetime | None
    status_list_uri: str
    status_index: int
    qr_version: int  # the QR symbol's version (size), 1 to 40

    @property
    def status_list_id(self) -> int:
        """The list's number, the last part of its URI."""
        tail = self.status_list_uri.rstrip("/").rsplit("/", 1)[-1]
        if not (tail.isascii() and tail.isdigit()):
            raise UnexpectedAnswer(f"qr: {self.status_list_uri!r} names no status list")
        return int(tail)

    @classmethod
    def parse(cls, body: Any) -> QrCode:
        f = Fields(body, "qr")
        listed = f.obj("status_list")
        return cls(
            payload=f.text("payload"),
            code=f.text("code"),
            issued_at=f.time("issued_at"),
            expires_at=f.maybe_time("expires_at"),
            status_list_uri=listed.text("uri"),
            status_index=listed.number("idx"),
            qr_version=f.number("qr_version"),
        )


@dataclass(frozen=True, slots=True)
class ShownHolder:
    """The holder as a scanned QR code shows it: kind and masked name, no number."""

    kind: HolderKind
    name: str


@dataclass(frozen=True, slots=True)
class QrCheck:
    """A scanned payload checked online (``GET /v1/verify/qr/{payload}``): its signature
    held, and this is the proof's status now."""

    code: str
    status: Status
    type: str
    issuer: Unit
    holder: ShownHolder
    valid_from: str
    valid_until: str | None
    issued_at: dt.datetime
    status_changed_at: dt.datetime
    checked_at: dt.datetime
    payload_expires_at: dt.datetime | None  # None for a static payload
    superseded_by: str | None = None
    status_as_of: dt.datetime | None = None
    status_label: str | None = None
    seal_kind: str | None = None
    data_owner: DataOwner | None = None
    endorsement: Endorsement | None = None

    @classmethod
    def parse(cls, body: Any) -> QrCheck:
        f = Fields(body, "qr check")
        holder = f.obj("holder")
        return cls(
            **status_fields(f),
            holder=ShownHolder(holder.word("kind", HolderKind), holder.text("name")),
            payload_expires_at=f.maybe_time("payload_expires_at"),
        )


@dataclass(frozen=True, slots=True)
class StatusList:
    """A signed Token Status List (CWT, ``application/statuslist+cwt``), 2 bits a proof:
    check it with the gateway's status-list key (``sealgate verify-qr`` does). Give it back
    as ``cached=`` to fetch only what changed (``If-None-Match``)."""

    list_id: int
    token: bytes = field(repr=False)
    etag: str
    last_modified: str | None
    cache_control: str | None


@dataclass(frozen=True, slots=True)
class PublicCheck:
    """What anyone learns of a code (``GET /v1/public/check``): valid or not, the type, the
    issuing unit and the dates; nothing of the holder."""

    valid: bool
    type: str
    unit_name: str
    valid_from: str
    valid_until: str | None

    @classmethod
    def parse(cls, body: Any) -> PublicCheck:
        f = Fields(body, "public check")
        return cls(
            valid=f.flag("valid"),
            type=f.text("type"),
            unit_name=f.text("unit_name"),
            valid_from=f.text("valid_from"),
            valid_until=f.maybe_text("valid_until"),
        )

"""Provisioning as the client reads it (the admin role): clients with their grants and
limits, and seals with their keys and suspension."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.fields import Fields

__all__ = ["ApiClient", "LookupLimit", "SealInfo", "SealKeyInfo"]


@dataclass(frozen=True, slots=True)
class LookupLimit:
    """A client's own limit: ``failed_lookups`` draining over ``window_seconds``."""

    failed_lookups: int
    window_seconds: float


@dataclass(frozen=True, slots=True)
class ApiClient:
    """A client of the gateway as the directory holds it. ``token`` is set only in the
    answer to :meth:`Client.add_client`: the gateway keeps its digest, never the token."""

    client_id: str
    name: str
    role: str
    office: str | None
    seals: tuple[str, ...]
    purposes: tuple[str, ...]
    lookup_limit: LookupLimit | None  # None: the city's
    created_at: dt.datetime
    token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, body: Any) -> ApiClient:
        f = Fields(body, "client")
        limit = None
        if f.raw().get("lookup_limit") is not None:
            own = f.obj("lookup_limit")
            window = own.maybe_real("window_seconds")
            if window is None:
                raise UnexpectedAnswer("client: its lookup limit has no window")
            limit = LookupLimit(own.number("failed_lookups"), window)
        return cls(
            client_id=f.text("client_id"),
            name=f.text("name"),
            role=f.text("role"),
            office=f.maybe_text("office"),
            seals=tuple(f.texts("seals")),
            purposes=tuple(f.texts("purposes")),
            lookup_limit=limit,
            created_at=f.time("created_at"),
            token=f.maybe_text("token"),
        )


@dataclass(frozen=True, slots=True)
class SealKeyInfo:
    version: int
    state: str  # active, retired, revoked
    not_after: dt.datetime  # its certificate's end


@dataclass(frozen=True, slots=True)
class SealInfo:
    """A seal: nothing is sealed with it while ``suspended_at`` is set."""

    seal_id: str
    kind: str  # proof (电子证明专用章) or verification (查询核验专用章)
    scope: str  # unit or platform
    unit_name: str
    unit_code: str
    suspended_at: dt.datetime | None
    keys: tuple[SealKeyInfo, ...]

    @classmethod
    def parse(cls, body: Any) -> SealInfo:
        f = Fields(body, "seal")
        return cls(
            seal_id=f.text("seal_id"),
            kind=f.text("kind"),
            scope=f.text("scope"),
            unit_name=f.text("unit_name"),
            unit_code=f.text("unit_code"),
            suspended_at=f.maybe_time("suspended_at"),
            keys=tuple(
                SealKeyInfo(k.number("version"), k.text("state"), k.time("not_after"))
                for k in f.items("keys")
            ),
        )

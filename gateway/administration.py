"""The directory changes an operator makes, each checked once here for the command line
and the admin's HTTP routes alike (docs/design.md §6.2).

An operation checks what it is given and returns a :class:`Change`, not yet made: its
audit action, whom it concerns, what its records say of it, and the directory write. The
caller records the intent (the CLI's :class:`~sealgate.gateway.cli_audit.CliAudit`, a
gateway's ``write_ahead``), makes the write, records the outcome and signs a checkpoint:
the same action, subject and detail whichever way the change came.

Nothing here needs the city root's key. What does (a seal's creation, rotation and
revocation, a CRL, the trust document) stays on the command line, beside the root's
token, and has no HTTP route (docs/design.md §5.2).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sealgate.gateway.home import HomeError
from sealgate.verify.directory import Client, Directory, LookupLimit, Role
from sealgate.verify.holders import HolderKind, InvalidHolderId, normalise_holder_id
from sealgate.verify.plain_text import plain_text as verify_plain_text

_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_CLIENT_NAME = 200
MAX_ID = 64  # a client's or seal's id, as a path names it
MAX_GRANTED_PURPOSE = 64  # what the audit trail keeps of a purpose
MAX_GRANTS = 100  # seals or purposes a client is granted
DEFAULT_LIMIT_WINDOW = 600.0  # seconds over which a client's own limit drains


class InvalidChange(HomeError):
    """A change refused before anything is recorded or written; ``field`` names what
    was wrong (a JSON field over HTTP, the option's name in the message on the CLI)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def new_token() -> str:
    return "sgt_" + secrets.token_urlsafe(32)


def plain_text(what: str, value: str, limit: int) -> str:
    """Operator-typed text the directory keeps (the one rule, :mod:`sealgate.verify.plain_text`);
    raises :class:`HomeError`."""
    try:
        return verify_plain_text(what, value, limit)
    except ValueError as exc:
        raise HomeError(str(exc)) from None


def _text(field: str, what: str, value: str, limit: int) -> str:
    try:
        return plain_text(what, value, limit)
    except HomeError as exc:
        raise InvalidChange(field, str(exc)) from None


# Every change this module makes, by its audit action (the CLI's names, the HTTP routes').
ACTIONS = frozenset(
    {
        "client-add",
        "client-remove",
        "client-set-grants",
        "client-set-limits",
        "seal-suspend",
        "seal-resume",
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    """A checked change to the directory, not yet made."""

    action: str  # the audit trail's name for it: client-add, seal-suspend, ...
    subject: str  # the client or seal it concerns
    detail: dict[str, object]  # what its records say of it beside the subject
    write: Callable[[Directory], None] = field(repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:  # the middleware signs each of ACTIONS at once
            raise ValueError(f"{self.action} is not a provisioning action")

    def record(self, operator: str) -> dict[str, object]:
        return record_detail(self.subject, operator, self.detail)


def record_detail(subject: str, operator: str, detail: Mapping[str, object]) -> dict[str, object]:
    """A provisioning record's detail, made on the command line or over HTTP: the subject,
    the operator who makes the change, and the change's own."""
    return {"subject": subject, "operator": operator, **detail}


@dataclass(frozen=True, slots=True)
class Grants:
    """What a client may use: the rule of which role takes which grant, checked against
    the directory's seals and matters (a blocking read: the gateway runs it off its loop)."""

    role: Role
    office: str | None
    seals: frozenset[str]
    purposes: frozenset[str]

    @classmethod
    def checked(
        cls,
        directory: Directory,
        *,
        role: Role,
        seals: Iterable[str] = (),
        purposes: Iterable[str] = (),
        office: str | None = None,
    ) -> Grants:
        seal_ids = frozenset(seals)
        purpose_set = frozenset(
            _text("purposes", "a purpose", p, MAX_GRANTED_PURPOSE) for p in purposes
        )
        if len(seal_ids) > MAX_GRANTS or len(purpose_set) > MAX_GRANTS:
            raise InvalidChange("seals", f"at most {MAX_GRANTS} seals and {MAX_GRANTS} purposes")
        if seal_ids and role is not Role.SIGNER:
            raise InvalidChange("seals", "only signers are granted seals")
        if purpose_set and role is not Role.VERIFIER:
            raise InvalidChange("purposes", "only verifiers are granted purposes")
        unknown = sorted(seal_ids - {s.seal_id for s in directory.seals()}) if seal_ids else []
        if unknown:
            raise InvalidChange("seals", f"unknown seal {unknown[0]}")
        # A purpose is a matter of the city's table (docs/design.md §17); the store refuses
        # another too (its reference), but only after the intent was recorded.
        if purpose_set:
            missing = sorted(purpose_set - {m.matter_id for m in directory.matters()})
            if missing:
                raise InvalidChange(
                    "purposes",
                    f"no matter {missing[0]} in the city's table: add it first"
                    " (sealgate matter add)",
                )
        if role in (Role.ISSUER, Role.REQUESTER) and office is None:
            raise InvalidChange(
                "office", f"a {role.value} belongs to an office: give its unit code"
            )
        if office is not None:
            try:
                office = normalise_holder_id(HolderKind.ORG, office)
            except InvalidHolderId as exc:
                raise InvalidChange("office", str(exc)) from None
        # A signer with an office answers the requests addressed to it (its inbox).
        if office is not None and role not in (Role.ISSUER, Role.REQUESTER, Role.SIGNER):
            raise InvalidChange(
                "office", "only issuers, requesters and signers belong to an office"
            )
        return cls(role, office, seal_ids, purpose_set)

    def detail(self) -> dict[str, object]:
        return {
            "role": self.role.value,
            "office": self.office,
            "seals": sorted(self.seals),
            "purposes": sorted(self.purposes),
        }


def add_client(name: str, grants: Grants) -> tuple[Change, Client, str]:
    """A new client with these grants and its token: the token is shown once, and only
    its digest is stored."""
    name = _text("name", "the client name", name, MAX_CLIENT_NAME)
    client = Client(
        new_id("C-"), name, grants.role, grants.office, grants.seals, grants.purposes, time.time()
    )
    token = new_token()

    def write(directory: Directory) -> None:
        directory.add_client(client, token)

    return Change("client-add", client.client_id, grants.detail(), write), client, token


def remove_client(client_id: str) -> Change:
    """Its token authenticates no more (serving gateways: within their cache's lifetime)."""
    return Change("client-remove", client_id, {}, lambda d: d.remove_client(client_id))


def set_grants(client_id: str, grants: Grants) -> Change:
    def write(directory: Directory) -> None:
        directory.set_client_grants(
            client_id,
            role=grants.role,
            office=grants.office,
            seals=grants.seals,
            purposes=grants.purposes,
        )

    return Change("client-set-grants", client_id, grants.detail(), write)


def lookup_limit(failures: int | None, window_seconds: float) -> LookupLimit:
    try:
        if failures is None:
            raise ValueError("give a number of failed lookups")
        return LookupLimit(failures, window_seconds)
    except ValueError as exc:
        raise InvalidChange("failed_lookups", str(exc)) from None


def set_limits(client_id: str, limit: LookupLimit | None) -> Change:
    """A client's own limit on failed lookups (``None``: the city's default again)."""
    shown = "default" if limit is None else f"{limit.failures}/{limit.window_seconds:g}s"
    return Change(
        "client-set-limits",
        client_id,
        {"failed_lookups": shown},
        lambda d: d.set_lookup_limit(client_id, limit),
    )


def suspend_seal(seal_id: str, *, suspend: bool) -> Change:
    """A seal suspended (misuse) seals nothing until resumed; what it sealed still
    verifies. Serving gateways notice within their catalog's refresh."""
    at = time.time() if suspend else None
    action = "seal-suspend" if suspend else "seal-resume"
    return Change(action, seal_id, {}, lambda d: d.suspend_seal(seal_id, at))

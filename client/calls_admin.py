"""The admin role's operations (provisioning), in the manner of
:mod:`sealgate.client.calls` (each described once, for both clients). Every change names
the operator who makes it (``X-Operator``), kept in the audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from sealgate.client.admin import ApiClient, SealInfo
from sealgate.client.calls import Call, json_of
from sealgate.client.calls_casework import operator_header
from sealgate.client.fields import Fields


def _client_path(client_id: str, tail: str = "") -> str:
    return f"/v1/admin/clients/{quote(client_id, safe='')}{tail}"


def _grants(
    role: str, seals: Iterable[str], purposes: Iterable[str], office: str | None
) -> dict[str, object]:
    return {"role": role, "seals": list(seals), "purposes": list(purposes), "office": office}


def _changed_client(method: str, path: str, operator: str, body: object = None) -> Call[ApiClient]:
    # Replayable: setting the same grants or limit again changes nothing.
    return Call(
        method,
        path,
        lambda r: ApiClient.parse(json_of(r)),
        json=body,
        headers=operator_header(operator),
    )


def clients() -> Call[list[ApiClient]]:
    return Call(
        "GET",
        "/v1/admin/clients",
        lambda r: [
            ApiClient.parse(item.raw()) for item in Fields(json_of(r), "clients").items("items")
        ],
    )


def add_client(
    name: str,
    role: str,
    seals: Iterable[str],
    purposes: Iterable[str],
    office: str | None,
    operator: str,
) -> Call[ApiClient]:
    # Not replayable: a repeat after no answer would add a second client (list them).
    return Call(
        "POST",
        "/v1/admin/clients",
        lambda r: ApiClient.parse(json_of(r)),
        json={"name": name, **_grants(role, seals, purposes, office)},
        headers=operator_header(operator),
        replayable=False,
        answers=(201,),
    )


def remove_client(client_id: str, operator: str) -> Call[None]:
    # Not replayable: a repeat of a removal made is 404 unknown-client.
    return Call(
        "DELETE",
        _client_path(client_id),
        lambda r: None,
        headers=operator_header(operator),
        replayable=False,
        answers=(204,),
    )


def set_grants(
    client_id: str,
    role: str,
    seals: Iterable[str],
    purposes: Iterable[str],
    office: str | None,
    operator: str,
) -> Call[ApiClient]:
    return _changed_client(
        "PUT", _client_path(client_id, "/grants"), operator, _grants(role, seals, purposes, office)
    )


def set_limits(
    client_id: str, failed_lookups: int, window_seconds: float | None, operator: str
) -> Call[ApiClient]:
    body: dict[str, object] = {"failed_lookups": failed_lookups}
    if window_seconds is not None:
        body["window_seconds"] = window_seconds
    return _changed_client("PUT", _client_path(client_id, "/limits"), operator, body)


def clear_limits(client_id: str, operator: str) -> Call[ApiClient]:
    return _changed_client("DELETE", _client_path(client_id, "/limits"), operator)


def seals() -> Call[list[SealInfo]]:
    return Call(
        "GET",
        "/v1/admin/seals",
        lambda r: [
            SealInfo.parse(item.raw()) for item in Fields(json_of(r), "seals").items("items")
        ],
    )


def suspension(seal_id: str, suspend: bool, operator: str) -> Call[SealInfo]:
    step = "suspend" if suspend else "resume"
    return Call(
        "POST",
        f"/v1/admin/seals/{quote(seal_id, safe='')}/{step}",
        lambda r: SealInfo.parse(json_of(r)),
        headers=operator_header(operator),
    )

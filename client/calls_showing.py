"""The operations of 亮码扫码 and the public check, in the manner of
:mod:`sealgate.client.calls` (each described once, for both clients)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

import httpx

from sealgate.client.calls import Call, json_of, path_code
from sealgate.client.codes import normalise_code
from sealgate.client.errors import UnexpectedAnswer
from sealgate.client.showing import QR_PREFIX, PublicCheck, QrCheck, QrCode, StatusList

Variant = Literal["dynamic", "static"]
ImageFormat = Literal["svg", "png"]
_IMAGE_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def qr(code: str, variant: Variant) -> Call[QrCode]:
    return Call(
        "GET",
        f"/v1/certificates/{path_code(code)}/qr",
        lambda r: QrCode.parse(json_of(r)),
        params={"format": "payload", "variant": variant},
    )


def qr_image(code: str, format_: ImageFormat, variant: Variant) -> Call[bytes]:
    wanted = _IMAGE_TYPES[format_]

    def read(response: httpx.Response) -> bytes:
        if not response.headers.get("Content-Type", "").startswith(wanted):
            raise UnexpectedAnswer(f"qr: not {wanted}")
        return response.content

    return Call(
        "GET",
        f"/v1/certificates/{path_code(code)}/qr",
        read,
        params={"format": format_, "variant": variant},
    )


def verify_qr(payload: str) -> Call[QrCheck]:
    # The payload's alphabet (Base45) has ' ', '%', '/' and ':': all escaped in the path.
    return Call(
        "GET", f"/v1/verify/qr/{quote(payload, safe='')}", lambda r: QrCheck.parse(json_of(r))
    )


def status_list(list_id: int, cached: StatusList | None) -> Call[StatusList]:
    if isinstance(list_id, bool) or not 0 <= list_id < 10**9:
        raise ValueError("a status list's id is a whole number below 10^9")

    def read(response: httpx.Response) -> StatusList:
        if response.status_code == 304 and cached is not None:
            return cached
        if not response.headers.get("Content-Type", "").startswith("application/statuslist+cwt"):
            raise UnexpectedAnswer("status list: not application/statuslist+cwt")
        etag = response.headers.get("ETag")
        if etag is None:
            raise UnexpectedAnswer("status list: no ETag")
        return StatusList(
            list_id=list_id,
            token=response.content,
            etag=etag,
            last_modified=response.headers.get("Last-Modified"),
            cache_control=response.headers.get("Cache-Control"),
        )

    headers = {} if cached is None else {"If-None-Match": cached.etag}
    return Call("GET", f"/v1/status-lists/{list_id}", read, headers=headers, answers=(200, 304))


def public_check(text: str) -> Call[PublicCheck]:
    """A code (checked and normalised here, so a typo costs no request) or a payload."""
    typed = text.strip()
    query = typed if typed.upper().startswith(QR_PREFIX) else normalise_code(typed)
    return Call(
        "GET", "/v1/public/check", lambda r: PublicCheck.parse(json_of(r)), params={"q": query}
    )

"""Strict parsing of request bodies: every field checked, unknown fields refused.

Errors name the offending field as a JSON path (``items[3].holder.id``) so a client can
fix the request; nothing from a refused request is stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sealgate.errors import Error
from sealgate.verify.holders import (
    HolderKind,
    InvalidHolderId,
    normalise_holder_id,
    require_birth_date,
)
from sealgate.verify.validity import BadInstant, instant

MAX_SAFE_INTEGER = 2**53 - 1

# The bounds the parsers enforce: text lengths in characters once trimmed, counts. The
# interface description (gateway/openapi.py) publishes these same names, so what a client
# reads there is what is checked here.
MAX_BATCH = 1000  # proofs in one sealing
MAX_BATCH_CHECKS = 100  # codes in one POST /v1/verify/batch
MAX_TEXT = 256  # free text: the endorsing units
MAX_SEAL_ID = 64
MAX_PROOF_TYPE = 64
MAX_HOLDER_NAME = 128
MAX_HOLDER_ID = 18  # a 身份证号 and a 统一社会信用代码 both have 18 characters
MAX_INSTANT = 40  # an RFC 3339 date-time with six fractional digits and an offset is 32
MAX_PURPOSE = 64
MAX_STATUS = 32
MAX_REASON = 500
MAX_CODE_TEXT = 64  # a code as typed (27 characters), with room for spacing
MAX_IDEMPOTENCY_KEY = 255
# Dates without a time are read in China Standard Time (sealgate.verify.validity): a proof
# valid until 2027-01-31 stays valid through that whole day where it is used.


class InvalidRequest(Error, ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class EndorsementRequest:
    extracting_unit: str | None
    verifying_unit: str | None


@dataclass(frozen=True, slots=True)
class ProofRequest:
    seal_id: str
    type: str
    holder_kind: HolderKind
    holder_id: str  # normalised, checked; never logged
    holder_name: str
    content: dict[str, Any]
    valid_from: str
    valid_until: str | None
    expires_at: float | None
    endorsement: EndorsementRequest | None


def decode_json(body: bytes) -> Any:
    """Parse a body as strict UTF-8 JSON (no NaN/Infinity, no duplicate keys)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("", f"the body is not valid UTF-8 (byte {exc.start})") from None

    def no_constants(name: str) -> Any:
        raise InvalidRequest("", f"{name} is not JSON")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidRequest(key, "appears twice")
            result[key] = value
        return result

    def exact_int(literal: str) -> int:
        # Beyond 2^53 JSON numbers are not exact across implementations (RFC 8785), and
        # identity numbers sent as numbers would lose digits: they belong in strings.
        if len(literal) > 17 or abs(value := int(literal)) > MAX_SAFE_INTEGER:
            raise InvalidRequest("", "an integer is beyond ±(2**53-1): send it as a string")
        return value

    def finite_float(literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise InvalidRequest("", "a number is out of range")
        return value

    try:
        return json.loads(
            text,
            parse_constant=no_constants,
            parse_int=exact_int,
            parse_float=finite_float,
            object_pairs_hook=no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            "", f"malformed JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidRequest("", "JSON nested too deeply") from None


def _object(value: Any, field: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(field, "must be an object")
    for key in value:
        if key not in required and key not in optional:
            raise InvalidRequest(_join(field, key), "is not a known field")
    for key in sorted(required):
        if key not in value:
            raise InvalidRequest(_join(field, key), "is required")
    return value


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


_FORBIDDEN = re.compile("[\x00-\x1f\ud800-\udfff]")  # control characters, lone surrogates


def _text(value: Any, field: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(field, "must be a string")
    stripped = value.strip()
    if not stripped:
        raise InvalidRequest(field, "must not be empty")
    if len(stripped) > limit:
        raise InvalidRequest(field, f"must be at most {limit} characters")
    if _FORBIDDEN.search(stripped):
        raise InvalidRequest(field, "must not contain control characters or lone surrogates")
    return stripped


def _instant(value: Any, field: str, *, end_of_day: bool) -> tuple[str, float]:
    text = _text(value, field, limit=MAX_INSTANT)
    try:
        return text, instant(text, end_of_day)
    except BadInstant as exc:
        raise InvalidRequest(field, str(exc)) from None


def parse_proof_request(value: Any, field: str = "") -> ProofRequest:
    obj = _object(
        value,
        field,
        {"seal_id", "type", "holder", "content", "valid_from"},
        {"valid_until", "endorsement"},
    )
    holder_field = _join(field, "holder")
    holder = _object(obj["holder"], holder_field, {"kind", "id", "name"}, set())
    try:
        kind = HolderKind(holder["kind"])
    except (ValueError, TypeError):
        raise InvalidRequest(_join(holder_field, "kind"), "must be 'person' or 'org'") from None
    id_field = _join(holder_field, "id")
    try:
        holder_id = normalise_holder_id(kind, _text(holder["id"], id_field, limit=MAX_HOLDER_ID))
        if kind is HolderKind.PERSON:
            require_birth_date(holder_id)
    except InvalidHolderId as exc:
        raise InvalidRequest(id_field, str(exc)) from None
    content = obj["content"]
    if not isinstance(content, dict):
        raise InvalidRequest(_join(field, "content"), "must be an object")
    valid_from, starts_at = _instant(
        obj["valid_from"], _join(field, "valid_from"), end_of_day=False
    )
    valid_until: str | None = None
    expires_at: float | None = None
    if obj.get("valid_until") is not None:
        until_field = _join(field, "valid_until")
        valid_until, expires_at = _instant(obj["valid_until"], until_field, end_of_day=True)
        if expires_at <= starts_at:
            raise InvalidRequest(until_field, "must be after valid_from")
    endorsement: EndorsementRequest | None = None
    if obj.get("endorsement") is not None:
        e_field = _join(field, "endorsement")
        e = _object(obj["endorsement"], e_field, set(), {"extracting_unit", "verifying_unit"})
        endorsement = EndorsementRequest(
            extracting_unit=_text(e["extracting_unit"], _join(e_field, "extracting_unit"))
            if e.get("extracting_unit") is not None
            else None,
            verifying_unit=_text(e["verifying_unit"], _join(e_field, "verifying_unit"))
            if e.get("verifying_unit") is not None
            else None,
        )
    return ProofRequest(
        seal_id=_text(obj["seal_id"], _join(field, "seal_id"), limit=MAX_SEAL_ID),
        type=_text(obj["type"], _join(field, "type"), limit=MAX_PROOF_TYPE),
        holder_kind=kind,
        holder_id=holder_id,
        holder_name=_text(holder["name"], _join(holder_field, "name"), limit=MAX_HOLDER_NAME),
        content=content,
        valid_from=valid_from,
        valid_until=valid_until,
        expires_at=expires_at,
        endorsement=endorsement,
    )


def parse_seal_body(value: Any) -> tuple[list[ProofRequest], bool]:
    """The proofs a ``POST /v1/certificates`` body asks for, and whether it was a batch."""
    if isinstance(value, dict) and "items" in value:
        _object(value, "", {"items"}, set())
        items = value["items"]
        if not isinstance(items, list):
            raise InvalidRequest("items", "must be an array")
        if not items:
            raise InvalidRequest("items", "must not be empty")
        if len(items) > MAX_BATCH:
            raise InvalidRequest("items", f"holds {len(items)} proofs; at most {MAX_BATCH}")
        return [parse_proof_request(item, f"items[{i}]") for i, item in enumerate(items)], True
    return [parse_proof_request(value)], False


def parse_purpose(value: str | None) -> str:
    if value is None:
        raise InvalidRequest("purpose", "is required: say what business the check is for")
    return _text(value, "purpose", limit=MAX_PURPOSE)


@dataclass(frozen=True, slots=True)
class StatusChangeBody:
    status: str
    reason: str
    superseded_by: str | None  # as typed; the code is checked by the caller


def parse_status_change(value: Any) -> StatusChangeBody:
    obj = _object(value, "", {"status", "reason"}, {"superseded_by"})
    status = _text(obj["status"], "status", limit=MAX_STATUS)
    superseded_by = obj.get("superseded_by")
    return StatusChangeBody(
        status=status,
        reason=_text(obj["reason"], "reason", limit=MAX_REASON),
        superseded_by=None
        if superseded_by is None
        else _text(superseded_by, "superseded_by", limit=MAX_CODE_TEXT),
    )


@dataclass(frozen=True, slots=True)
class HolderQuery:
    kind: HolderKind
    holder_id: str
    type: str


def parse_holder_query(holder_id: str | None, type_: str | None) -> HolderQuery:
    """Which holder's proofs: the id decides its kind (a valid 身份证号 or 统一社会信用代码)."""
    if holder_id is None:
        raise InvalidRequest("holder_id", "is required")
    if type_ is None:
        raise InvalidRequest("type", "is required")
    kind, normalised = parse_holder_id(holder_id)
    return HolderQuery(kind, normalised, _text(type_, "type", limit=MAX_PROOF_TYPE))


def parse_holder_id(holder_id: str | None) -> tuple[HolderKind, str]:
    """A holder named by id alone: its kind is the one whose check the id passes."""
    if holder_id is None:
        raise InvalidRequest("holder_id", "is required")
    text = _text(holder_id, "holder_id", limit=MAX_HOLDER_ID)
    for kind in (HolderKind.PERSON, HolderKind.ORG):
        try:
            return kind, normalise_holder_id(kind, text)
        except InvalidHolderId:
            continue
    raise InvalidRequest(
        "holder_id", "is neither a resident identity number nor a unified social credit code"
    )


def parse_idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header, if sent: printable ASCII, 1 to MAX_IDEMPOTENCY_KEY long."""
    if value is not None and (
        not value
        or len(value) > MAX_IDEMPOTENCY_KEY
        or not value.isprintable()
        or not value.isascii()
    ):
        raise InvalidRequest(
            "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return value


@dataclass(frozen=True, slots=True)
class CodeCheck:
    code: str  # as typed; checked by the caller, item by item
    holder: HolderQuery | None  # "is this the holder in front of me": never stored


def parse_verify_batch(value: Any) -> tuple[str, list[CodeCheck]]:
    """The purpose and the checks of a ``POST /v1/verify/batch`` body. A malformed body
    or item is the whole request's 400; a code that is not found is its item's 404."""
    obj = _object(value, "", {"purpose", "items"}, set())
    purpose = _text(obj["purpose"], "purpose", limit=MAX_PURPOSE)
    items = obj["items"]
    if not isinstance(items, list):
        raise InvalidRequest("items", "must be an array")
    if not items:
        raise InvalidRequest("items", "must not be empty")
    if len(items) > MAX_BATCH_CHECKS:
        raise InvalidRequest("items", f"holds {len(items)} codes; at most {MAX_BATCH_CHECKS}")
    checks = []
    for i, item in enumerate(items):
        field = f"items[{i}]"
        entry = _object(item, field, {"code"}, {"holder_id"})
        code = _text(entry["code"], f"{field}.code", limit=MAX_CODE_TEXT)
        holder = None
        if "holder_id" in entry:
            try:
                holder = parse_holder_query(entry["holder_id"], "-")
            except InvalidRequest as exc:
                raise InvalidRequest(f"{field}.holder_id", exc.message) from None
        checks.append(CodeCheck(code, holder))
    return purpose, checks

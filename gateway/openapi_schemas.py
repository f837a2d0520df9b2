"""The pieces /openapi.json is built of: problem shapes, headers and the schemas of
requests and answers, each limit taken from the name :mod:`sealgate.gateway.requests`
enforces it with. :mod:`sealgate.gateway.openapi` assembles them into the document.
"""

from __future__ import annotations

from typing import Any

from sealgate.gateway.requests import (
    MAX_BATCH,
    MAX_HOLDER_ID,
    MAX_HOLDER_NAME,
    MAX_INSTANT,
    MAX_PROOF_TYPE,
    MAX_PURPOSE,
    MAX_SEAL_ID,
    MAX_TEXT,
)
from sealgate.verify.code import CROCKFORD_ALPHABET, is_well_formed
from sealgate.verify.directory import KeyState, SealKind
from sealgate.verify.holders import HolderKind
from sealgate.verify.registry import Status
from sealgate.verify.validity import RFC3339_DATE, RFC3339_DATE_TIME

Schema = dict[str, Any]


def _example_code(without_check: str) -> str:
    """A well-formed code: ``without_check`` completed with the check character that fits."""
    return next(
        without_check + symbol
        for symbol in CROCKFORD_ALPHABET
        if is_well_formed(without_check + symbol)
    )


EXAMPLE_CODE = _example_code("430900-7K3M9Q-ZX4T2B-H8WDQ")

# The problem codes each refusal may carry (RFC 9457 details with a stable `code`).
PROBLEM_CODES: dict[int, tuple[str, ...]] = {
    # bad-request: refused by the HTTP layer before any route (bytes a target may not hold)
    # duplicate-authorization: two Authorization headers, which proxies and servers may
    # each read differently, are refused before either is looked up
    400: ("invalid-request", "incomplete-body", "bad-request", "duplicate-authorization"),
    401: ("unauthenticated",),
    403: (
        "forbidden-role",
        "purpose-not-granted",
        "seal-not-granted",
        "seal-suspended",
        "not-your-office",
        "no-office",
        "consent-required",
        "consent-invalid",
        "holder-not-asserted",
        # fields=content for a purpose whose matter does not read that type's content
        "content-not-granted",
    ),
    404: (
        "unknown-code",
        "not-found",
        "request-not-found",
        "unknown-status-list",
        "unknown-consent",
        "unknown-subscription",
        "no-crl",
        "unknown-client",
        "unknown-seal",
    ),
    405: ("method-not-allowed",),
    408: ("body-timeout",),
    409: (
        "status-terminal",
        "transition-not-allowed",
        "not-yet-valid",
        "request-closed",
        "step-not-allowed",
        "not-showable",
    ),
    413: ("body-too-large",),
    417: ("expectation-failed",),  # an Expect other than 100-continue, before any route
    422: (
        "idempotency-key-reused",
        "invalid-supersession",
        "invalid-proof",
        "validity-ended",
        "endorsement-not-typed",
        "unknown-office",
        "seal-kind-mismatch",
        "holder-mismatch",
        "invalid-qr",
        "qr-expired",
        "unknown-matter",  # a consent for a matter the city's table does not hold
        "invalid-provisioning",
    ),
    429: ("too-many-failed-lookups", "too-many-checks"),
    503: (
        "hsm-unavailable",
        "seal-key-unavailable",
        "seal-certificate-not-valid",
        "seal-revoked",  # no Retry-After: an operator must rotate the seal
        "tsa-unavailable",
        "registry-unavailable",
        "registry-corrupted",  # no Retry-After: waiting does not mend damaged data
        "directory-unavailable",
        "audit-unavailable",
        "calendar-unusable",
        "trust-document-unpublished",  # no Retry-After: the operator must publish one
    ),
}
_PROBLEM_DESCRIPTIONS = {
    400: "The request is invalid; `field` names the offending field as a JSON path",
    401: "No valid bearer token",
    403: "The client's role, purposes, seals or office do not allow this",
    404: "No such proof (malformed, forged and unregistered codes alike), request (or not"
    " this office's), status list, consent, client, seal or path, or no CRL yet",
    405: "The path has no such method; `Allow` lists those it has",
    408: "The body did not arrive in time",
    409: "The proof's status (or its not having started yet) does not allow that change, or "
    "the request's state that step",
    413: "The body is too large",
    417: "The request expects what the server does not do",
    422: "Well-formed, but not acceptable",
    429: "Too many failed lookups (or public checks from one address); retry after "
    "`Retry-After` seconds",
    503: "A component is unavailable; retry after `Retry-After` seconds. Without "
    "`Retry-After` (`registry-corrupted`: the registry's data is damaged; "
    "`trust-document-unpublished`: no root-signed trust document yet) retrying does "
    "not help until the operator restores it",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def text_schema(max_length: int, **more: Any) -> Schema:
    """A text field: 1 to ``max_length`` characters (the parsers count them once trimmed,
    and refuse control characters)."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, **more}


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def object_schema(properties: dict[str, Schema], *optional: str) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def header(schema: Schema, description: str, *, required: bool = True) -> Schema:
    return {"required": required, "description": description, "schema": schema}


REQUEST_ID_HEADER = header(
    {"type": "string", "minLength": 1},
    "The request's id, the gateway's own (a caller's X-Request-Id is kept in the audit"
    " trail only as a keyed hash)",
)


def no_store_header() -> Schema:
    return header({"const": "no-store"}, "Never kept by a shared cache")


def problem_response(status: int) -> Schema:
    headers: dict[str, Schema] = {
        "X-Request-Id": REQUEST_ID_HEADER,
        "Cache-Control": no_store_header(),
    }
    if status == 401:
        headers["WWW-Authenticate"] = header(
            {"const": 'Bearer realm="sealgate"'}, "The scheme to authenticate with"
        )
    elif status == 405:
        headers["Allow"] = header({"type": "string"}, "The methods the path has (RFC 9110)")
    elif status in (429, 503):
        headers["Retry-After"] = header(
            {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "Seconds to wait before retrying",
            required=status == 429,
        )
    return {
        "description": _PROBLEM_DESCRIPTIONS[status],
        "headers": headers,
        "content": {
            "application/problem+json": {
                "schema": {
                    "allOf": [
                        ref("Problem"),
                        {
                            "properties": {
                                "status": {"const": status},
                                "code": {"enum": list(PROBLEM_CODES[status])},
                            }
                        },
                    ]
                }
            }
        },
    }


def problems(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/Problem{s}"} for s in statuses}


def json_answer(
    description: str, schema: Schema, *, cache: str | None = None, **headers: Schema
) -> Schema:
    """A JSON answer; ``cache`` is the Cache-Control it always carries."""
    all_headers = {"X-Request-Id": REQUEST_ID_HEADER, **headers}
    if cache is not None:
        all_headers["Cache-Control"] = header({"const": cache}, "How long it may be kept")
    return {
        "description": description,
        "headers": all_headers,
        "content": {"application/json": {"schema": schema}},
    }


_CODE: Schema = {
    "type": "string",
    "description": "Unified verification code, hyphenated",
    "pattern": f"^[0-9]{{6}}(-[{CROCKFORD_ALPHABET}]{{6}}){{3}}$",
    "examples": [EXAMPLE_CODE],
}
_INSTANT_ANSWER: Schema = {"type": "string", "format": "date-time"}  # UTC, whole seconds
_STATUS: Schema = {"enum": [s.value for s in Status]}
_ISSUER = object_schema({"unit_name": {"type": "string"}, "unit_code": {"type": "string"}})
_INSTANT_REQUEST = text_schema(
    MAX_INSTANT,
    pattern=f"^(?:{RFC3339_DATE.pattern}|{RFC3339_DATE_TIME.pattern})$",
    description="RFC 3339 date (China Standard Time: valid_until covers that whole day) "
    "or date-time with an offset",
)

PROOF_REQUEST = object_schema(
    {
        "seal_id": text_schema(MAX_SEAL_ID),
        "type": text_schema(MAX_PROOF_TYPE, examples=["无犯罪记录证明"]),
        "holder": object_schema(
            {
                "kind": {"enum": [k.value for k in HolderKind]},
                "id": text_schema(
                    MAX_HOLDER_ID,
                    description="身份证号 (GB 11643) or 统一社会信用代码 (GB 32100), "
                    "with its check character",
                ),
                "name": text_schema(MAX_HOLDER_NAME),
            }
        ),
        "content": {"type": "object", "description": "What the proof states"},
        "valid_from": _INSTANT_REQUEST,
        "valid_until": nullable(_INSTANT_REQUEST),
        "endorsement": nullable(
            object_schema(
                {
                    "extracting_unit": nullable(text_schema(MAX_TEXT)),
                    "verifying_unit": nullable(text_schema(MAX_TEXT)),
                },
                "extracting_unit",
                "verifying_unit",
            )
        ),
    },
    "valid_until",
    "endorsement",
)

SEALED = object_schema(
    {
        "code": _CODE,
        "status": {
            **_STATUS,
            "description": "As a verification shows it at that moment: valid, not-yet-valid "
            "(valid_from ahead), expired (archival issuance only: otherwise a proof already "
            "ended is refused 422 validity-ended), or on a replay any change made since",
        },
        "issued_at": _INSTANT_ANSWER,
        "seal_id": {"type": "string"},
        "document": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "The sealed proof, DER CMS SignedData",
        },
    }
)
# `required: [items]` and no other property: a single proof (which has no `items`) can
# match only the other branch of the answer's oneOf.
SEALED_BATCH = object_schema(
    {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": ref("SealedProof"),
        }
    }
)

_STATUS_FIELDS: dict[str, Schema] = {
    "code": _CODE,
    "status": _STATUS,
    "status_label": {
        "type": "string",
        "description": "The status in Chinese, when the request's Accept-Language prefers it",
    },
    "type": {"type": "string"},
    "issuer": _ISSUER,
    "seal_kind": {
        "enum": [k.value for k in SealKind],
        "description": "The kind of the seal that sealed it: proof (电子证明专用章) or "
        "verification (查询核验专用章); absent for a seal the directory no longer knows",
    },
    "holder": object_schema(
        {
            "kind": {"enum": [k.value for k in HolderKind]},
            "name": {"type": "string", "description": "Masked: 张*"},
            "id": {"type": "string", "description": "Masked: 4309**********1234"},
        }
    ),
    "valid_from": {"type": "string"},
    "valid_until": {"type": ["string", "null"]},
    "issued_at": _INSTANT_ANSWER,
    "status_changed_at": _INSTANT_ANSWER,
    "checked_at": _INSTANT_ANSWER,
    "superseded_by": _CODE,
    "data_owner": {
        **object_schema(
            {"unit_code": {"type": "string"}, "unit_name": {"type": "string"}}, "unit_name"
        ),
        "description": "A platform seal's proof: the office whose data it states, which "
        "alone changes its status (unit_name when the directory knows the office by a seal "
        "of its own); absent for a unit's own seal",
    },
    "endorsement": {
        **object_schema(
            {
                "extracting_unit": {"type": ["string", "null"]},
                "verifying_unit": {"type": ["string", "null"]},
                "extracted_at": _INSTANT_ANSWER,
            }
        ),
        "description": "A verification request's answer: who extracted (the requesting "
        "office), who verified (the responding office) and when, as the sealed proof's "
        "endorsement says (宁波 第十四条); absent for a proof not endorsed",
    },
}
# What a status view holds only sometimes.
STATUS_OPTIONAL = (
    "superseded_by",
    "status_as_of",
    "seal_kind",
    "status_label",
    "data_owner",
    "endorsement",
)
STATUS_VIEW = object_schema(
    {
        **_STATUS_FIELDS,

        "status_as_of": {
            **_INSTANT_ANSWER,
            "description": "Present only when the registry could not be read: the status "
            "is a cached copy known current as of this instant (docs/design.md §11)",
        },
    },
    *STATUS_OPTIONAL,
)
# GET /v1/verify/{code}: the status view, and with fields=content the content
VERIFY_VIEW = object_schema(
    {
        **STATUS_VIEW["properties"],
        "content": {
            "type": "object",
            "description": "Only with fields=content: the facts the issuing office sealed, "
            "of the fields the purpose's matter may read; the holder's identity number "
            "masked wherever it appears",
        },
    },
    *(name for name in STATUS_VIEW["properties"] if name not in STATUS_VIEW["required"]),
    "content",
)
VERIFY_BATCH = object_schema(
    {
        "purpose": {"type": "string", "minLength": 1, "maxLength": 64},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": object_schema(
                {
                    "code": {"type": "string", "minLength": 1, "maxLength": 64},
                    "holder_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 18,
                        "description": "Asks holder_match: compared as a keyed hash, never "
                        "stored, returned or logged; a mismatch counts as a failed lookup",
                    },
                },
                "holder_id",
            ),
        },
    }
)
VERIFY_BATCH_ANSWER = object_schema(
    {
        "purpose": {"type": "string"},
        "items": {
            "type": "array",
            "description": "In the request's order: the proof's status, or its problem",
            "items": {
                "oneOf": [
                    object_schema(
                        {**STATUS_VIEW["properties"], "holder_match": {"type": "boolean"}},
                        *STATUS_OPTIONAL,
                        "holder_match",
                    ),
                    object_schema({"problem": {"$ref": "#/components/schemas/Problem"}}),
                ]
            },
        },
        "checked_at": _INSTANT_ANSWER,
    }
)
STATUS_HISTORY = object_schema(
    {
        **_STATUS_FIELDS,
        "history": {
            "type": "array",
            "items": object_schema(
                {
                    "from": _STATUS,
                    "to": _STATUS,
                    "reason": {"type": "string"},
                    "superseded_by": {"oneOf": [_CODE, {"type": "null"}]},
                    "by": {"type": "string", "description": "The client that changed it"},
                    "at": _INSTANT_ANSWER,
                }
            ),
        },
    },
    *STATUS_OPTIONAL,
)
DOCUMENT_CHECK = object_schema(
    {
        "seal": {"const": "valid"},
        "code": {"type": "string"},
        "seal_id": {"type": "string"},
        "issuer": _ISSUER,
        "signing_time": {**_INSTANT_ANSWER, "description": "As the signer asserts it"},
        "judged_at": {
            **_INSTANT_ANSWER,
            "description": "The time the proof was judged at: its checked signature "
            "timestamp's, else its signing time (checked.time says which)",
        },
        "seal_kind": {"enum": [k.value for k in SealKind]},
        "endorsement": object_schema(
            {
                "extracting_unit": {"type": ["string", "null"]},
                "verifying_unit": {"type": ["string", "null"]},
                "extracted_at": {"type": ["string", "null"], "format": "date-time"},
            }
        ),
        "registered": {
            "type": "boolean",
            "description": "Whether its signed content and signed attributes are those of "
            "the proof registered under its signed code",
        },
        "status": {
            **_STATUS,
            "enum": [*_STATUS["enum"], None],
            "description": "The registered status of its signed code (null: not registered)",
        },
        "checked": object_schema(
            {
                "time": {"type": "string", "description": "Where the time judged came from"},
                "retirement": {
                    "type": "string",
                    "description": "Whether the seal key was still active then",
                },
                "revocation": {
                    "type": "string",
                    "description": "The revocation source consulted (the seal directory, "
                    "a CRL) and its verdict, or 'not checked offline'",
                },
                "registry": {"type": "string", "description": "What the registry holds"},
            }
        ),
        "checked_at": _INSTANT_ANSWER,
    },
    "seal_kind",
    "endorsement",
)
TRUST = object_schema(
    {
        "document": object_schema(
            {
                "format": {"const": "sealgate-trust/1"},
                "version": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Grows by one with each publication",
                },
                "issued_at": _INSTANT_ANSWER,
                "roots": {"type": "array", "items": {"type": "string", "description": "PEM"}},
                "seals": {
                    "type": "array",
                    "items": object_schema(
                        {
                            "seal_id": {"type": "string"},
                            "kind": {"enum": [k.value for k in SealKind]},
                            "kind_name": {"type": "string"},
                            "unit_name": {"type": "string"},
                            "unit_code": {"type": "string"},
                            "version": {"type": "integer"},
                            "state": {"enum": [s.value for s in KeyState]},
                            "not_before": _INSTANT_ANSWER,
                            "not_after": _INSTANT_ANSWER,
                            "retired_at": {
                                "oneOf": [_INSTANT_ANSWER, {"type": "null"}],
                                "description": "When the key stopped sealing (null: active)",
                            },
                            "certificate": {"type": "string", "description": "PEM"},
                        }
                    ),
                },
                "keys": {
                    "type": "array",
                    "description": "The gateway's keys for QR payloads, status lists and "
                    "consents (COSE, EC P-256); absent in documents published before them",
                    "items": object_schema(
                        {
                            "kid": {
                                "type": "string",
                                "description": "Base64url of the first 8 bytes of the SHA-256 "
                                "of the key's SubjectPublicKeyInfo",
                            },
                            "use": {
                                "type": "array",
                                "items": {"enum": ["qr", "status-list", "consent"]},
                            },
                            "public_key": {"type": "string", "description": "PEM"},
                        }
                    ),
                },
            },
            "keys",
        ),
        "signature": object_schema(
            {
                "algorithm": {"enum": ["ecdsa-with-SHA256", "sha256WithRSAEncryption"]},
                "root": {
                    "type": "string",
                    "description": "Hex SHA-256 of the signing root certificate's DER",
                },
                "value": {
                    "type": "string",
                    "description": "Base64 signature over the SHA-256 of the RFC 8785 JSON of "
                    "`document`",
                },
            }
        ),
    }
)
READINESS = object_schema(
    {
        "ready": {"type": "boolean"},
        "checks": object_schema(
            {
                name: {"type": "string"}
                for name in (
                    "hsm",
                    "registry",
                    "cache",
                    "audit",
                    "seals",
                    "breakers",
                    "checkpoints",
                    "crl",
                )
            }
        ),
    }
)

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
FIELDS: Schema = {
    "name": "fields",
    "in": "query",
    "required": False,
    "description": "content: the answer also carries the proof's sealed content, of the "
    "fields the purpose's matter may read (docs/design.md §17); 403 content-not-granted "
    "where it reads none of this type, and where the city requires consent only with the "
    "holder's consent for that matter (Consent-Token). Any other value is 400.",
    "schema": {"enum": ["content"]},
}
PURPOSE: Schema = {
    "name": "purpose",
    "in": "query",
    "required": True,
    "description": "The business the check is for; must be granted to the client.",
    "schema": text_schema(MAX_PURPOSE),
}
CODE_PARAMETER: Schema = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "Unified verification code (case-insensitive, hyphens optional, O/I/L "
    "read as 0/1/1, full-width forms as ASCII)",
    "schema": {"type": "string", "minLength": 1},
    "example": EXAMPLE_CODE,
}
DER: Schema = {"type": "string", "format": "binary"}

# For the other parts of the document (gateway/openapi_requests.py).
CODE_SCHEMA = _CODE
INSTANT_ANSWER = _INSTANT_ANSWER

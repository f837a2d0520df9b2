"""The OpenAPI 3.1 description of the HTTP interface (served at ``/openapi.json``).

Every answer of every route is described: each success with the schema of exactly what
its handler sends, each refusal as problem details with the codes it may carry. The
limits and patterns of requests are the names :mod:`sealgate.gateway.requests` checks
them with, and the enumerations are the domain's own. tests/gateway/test_openapi_conformance.py
runs schemathesis against a real gateway with this document.
"""

from __future__ import annotations

from typing import Any

from sealgate.gateway.requests import (
    MAX_BATCH,
    MAX_CODE_TEXT,
    MAX_HOLDER_ID,
    MAX_HOLDER_NAME,
    MAX_IDEMPOTENCY_KEY,
    MAX_INSTANT,
    MAX_PROOF_TYPE,
    MAX_PURPOSE,
    MAX_REASON,
    MAX_SEAL_ID,
    MAX_TEXT,
    RFC3339_DATE,
    RFC3339_DATE_TIME,
)
from sealgate.verify.code import CROCKFORD_ALPHABET, is_well_formed
from sealgate.verify.directory import KeyState, SealKind
from sealgate.verify.holders import HolderKind
from sealgate.verify.registry import Status

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
    400: ("invalid-request", "incomplete-body", "bad-request"),
    401: ("unauthenticated",),
    403: ("forbidden-role", "purpose-not-granted", "seal-not-granted", "not-your-office"),
    404: ("unknown-code", "not-found"),
    405: ("method-not-allowed",),
    408: ("body-timeout",),
    409: ("status-terminal", "transition-not-allowed"),
    413: ("body-too-large",),
    417: ("expectation-failed",),  # an Expect other than 100-continue, before any route
    422: ("idempotency-key-reused", "invalid-supersession", "invalid-proof"),
    429: ("too-many-failed-lookups",),
    503: (
        "hsm-unavailable",
        "seal-key-unavailable",
        "seal-certificate-not-valid",
        "registry-unavailable",
        "directory-unavailable",
        "audit-unavailable",
    ),
}
_PROBLEM_DESCRIPTIONS = {
    400: "The request is invalid; `field` names the offending field as a JSON path",
    401: "No valid bearer token",
    403: "The client's role, purposes, seals or office do not allow this",
    404: "No such proof (malformed, forged and unregistered codes alike) or path",
    405: "The path has no such method; `Allow` lists those it has",
    408: "The body did not arrive in time",
    409: "The proof's status does not allow that change",
    413: "The body is too large",
    417: "The request expects what the server does not do",
    422: "Well-formed, but not acceptable",
    429: "Too many failed lookups; retry after `Retry-After` seconds",
    503: "A component is unavailable; retry later",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, **more: Any) -> Schema:
    """A text field: 1 to ``max_length`` characters (the parsers count them once trimmed,
    and refuse control characters)."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, **more}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict[str, Schema], *optional: str) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _header(schema: Schema, description: str, *, required: bool = True) -> Schema:
    return {"required": required, "description": description, "schema": schema}


_REQUEST_ID_HEADER = _header(
    {"type": "string", "minLength": 1},
    "The request's id: the caller's X-Request-Id if it was a plain token, else a new one",
)


def _no_store() -> Schema:
    return _header({"const": "no-store"}, "Never kept by a shared cache")


def _problem_response(status: int) -> Schema:
    headers: dict[str, Schema] = {"X-Request-Id": _REQUEST_ID_HEADER, "Cache-Control": _no_store()}
    if status == 401:
        headers["WWW-Authenticate"] = _header(
            {"const": 'Bearer realm="sealgate"'}, "The scheme to authenticate with"
        )
    elif status == 405:
        headers["Allow"] = _header({"type": "string"}, "The methods the path has (RFC 9110)")
    elif status in (429, 503):
        headers["Retry-After"] = _header(
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
                        _ref("Problem"),
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


def _problems(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/Problem{s}"} for s in statuses}


def _json(
    description: str, schema: Schema, *, cache: str | None = None, **headers: Schema
) -> Schema:
    """A JSON answer; ``cache`` is the Cache-Control it always carries."""
    all_headers = {"X-Request-Id": _REQUEST_ID_HEADER, **headers}
    if cache is not None:
        all_headers["Cache-Control"] = _header({"const": cache}, "How long it may be kept")
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
_ISSUER = _object({"unit_name": {"type": "string"}, "unit_code": {"type": "string"}})
_INSTANT_REQUEST = _text(
    MAX_INSTANT,
    pattern=f"^(?:{RFC3339_DATE.pattern}|{RFC3339_DATE_TIME.pattern})$",
    description="RFC 3339 date (China Standard Time: valid_until covers that whole day) "
    "or date-time with an offset",
)

_PROOF_REQUEST = _object(
    {
        "seal_id": _text(MAX_SEAL_ID),
        "type": _text(MAX_PROOF_TYPE, examples=["无犯罪记录证明"]),
        "holder": _object(
            {
                "kind": {"enum": [k.value for k in HolderKind]},
                "id": _text(
                    MAX_HOLDER_ID,
                    description="身份证号 (GB 11643) or 统一社会信用代码 (GB 32100), "
                    "with its check character",
                ),
                "name": _text(MAX_HOLDER_NAME),
            }
        ),
        "content": {"type": "object", "description": "What the proof states"},
        "valid_from": _INSTANT_REQUEST,
        "valid_until": _nullable(_INSTANT_REQUEST),
        "endorsement": _nullable(
            _object(
                {
                    "extracting_unit": _nullable(_text(MAX_TEXT)),
                    "verifying_unit": _nullable(_text(MAX_TEXT)),
                },
                "extracting_unit",
                "verifying_unit",
            )
        ),
    },
    "valid_until",
    "endorsement",
)

_SEALED = _object(
    {
        "code": _CODE,
        "status": _STATUS,
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
_SEALED_BATCH = _object(
    {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": _ref("SealedProof"),
        }
    }
)

_STATUS_FIELDS: dict[str, Schema] = {
    "code": _CODE,
    "status": _STATUS,
    "type": {"type": "string"},
    "issuer": _ISSUER,
    "holder": _object(
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
}
_STATUS_VIEW = _object(_STATUS_FIELDS, "superseded_by")
_STATUS_HISTORY = _object(
    {
        **_STATUS_FIELDS,
        "history": {
            "type": "array",
            "items": _object(
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
    "superseded_by",
)
_DOCUMENT_CHECK = _object(
    {
        "seal": {"const": "valid"},
        "code": {"type": "string"},
        "seal_id": {"type": "string"},
        "issuer": _ISSUER,
        "signing_time": _INSTANT_ANSWER,
        "registered": {
            "type": "boolean",
            "description": "Whether this very document is the one registered for its code",
        },
        "status": {**_STATUS, "enum": [*_STATUS["enum"], None]},
        "checked_at": _INSTANT_ANSWER,
    }
)
_TRUST = _object(
    {
        "roots": {"type": "array", "items": {"type": "string", "description": "PEM"}},
        "seals": {
            "type": "array",
            "items": _object(
                {
                    "seal_id": {"type": "string"},
                    "kind": {"enum": [k.value for k in SealKind]},
                    "kind_name": {"type": "string"},
                    "unit_name": {"type": "string"},
                    "unit_code": {"type": "string"},
                    "version": {"type": "integer"},
                    "state": {"enum": [s.value for s in KeyState]},
                    "certificate": {"type": "string", "description": "PEM"},
                }
            ),
        },
    }
)
_READINESS = _object(
    {
        "ready": {"type": "boolean"},
        "checks": _object(
            {name: {"type": "string"} for name in ("hsm", "registry", "cache", "audit", "seals")}
        ),
    }
)

_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_PURPOSE: Schema = {
    "name": "purpose",
    "in": "query",
    "required": True,
    "description": "The business the check is for; must be granted to the client.",
    "schema": _text(MAX_PURPOSE),
}
_CODE_PARAMETER: Schema = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "Unified verification code (case-insensitive, hyphens optional, O/I/L "
    "read as 0/1/1, full-width forms as ASCII)",
    "schema": {"type": "string", "minLength": 1},
    "example": EXAMPLE_CODE,
}
_DER: Schema = {"type": "string", "format": "binary"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "sealgate",
        "version": "1",
        "description": "Sealing and verification gateway of a certificate-free city. "
        "Every refusal is `application/problem+json` (RFC 9457) with a stable `code`, "
        "those of the HTTP layer before any route too (400 bad-request for bytes a request "
        "may not hold, 417 for an unknown `Expect`); a method a path does not have is "
        "answered 405 with `Allow`.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Problem": {
                **_object(
                    {
                        "type": {"type": "string", "pattern": "^urn:sealgate:problem:[a-z-]+$"},
                        "title": {"type": "string"},
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "code": {"type": "string"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                        "reason": {"type": "string", "description": "invalid-proof: what failed"},
                        "request_id": {"type": "string"},
                    },
                    "detail",
                    "field",
                    "reason",
                    "request_id",
                ),
                "description": "RFC 9457 problem details with a stable `code`",
            },
            "ProofRequest": _PROOF_REQUEST,
            "SealedProof": _SEALED,
            "SealedBatch": _SEALED_BATCH,
            "StatusView": _STATUS_VIEW,
            "StatusHistory": _STATUS_HISTORY,
        },
        "responses": {f"Problem{status}": _problem_response(status) for status in PROBLEM_CODES},
    },
    "paths": {
        "/v1/certificates": {
            "post": {
                "summary": f"Seal and register one proof, or a batch of up to {MAX_BATCH:,}",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "A retry with the same key and body gets the first "
                        "answer again (Idempotent-Replayed: true)",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_IDEMPOTENCY_KEY,
                            "pattern": "^[ -~]+$",
                        },
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _ref("ProofRequest"),
                                    _object(
                                        {
                                            "items": {
                                                "type": "array",
                                                "minItems": 1,
                                                "maxItems": MAX_BATCH,
                                                "items": _ref("ProofRequest"),
                                            }
                                        }
                                    ),
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Sealed and durably registered",
                        "headers": {
                            "X-Request-Id": _REQUEST_ID_HEADER,
                            "Idempotent-Replayed": _header(
                                {"const": "true"},
                                "Answered from an earlier request with this Idempotency-Key",
                                required=False,
                            ),
                        },
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [_ref("SealedProof"), _ref("SealedBatch")]}
                            }
                        },
                    },
                    **_problems(400, 401, 403, 408, 413, 422, 503),
                },
            }
        },
        "/v1/verify/{code}": {
            "get": {
                "summary": "Current status of a proof, holder masked",
                "security": _BEARER,
                "parameters": [_CODE_PARAMETER, _PURPOSE],
                "responses": {
                    "200": _json("The proof's status", _ref("StatusView"), cache="no-store"),
                    **_problems(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/v1/certificates/{code}/document": {
            "get": {
                "summary": "The sealed proof (DER CMS), to a verifier or its issuing office",
                "security": _BEARER,
                "parameters": [
                    _CODE_PARAMETER,
                    {**_PURPOSE, "required": False, "description": "Required of verifiers"},
                ],
                "responses": {
                    "200": {
                        "description": "The sealed proof",
                        "headers": {
                            "X-Request-Id": _REQUEST_ID_HEADER,
                            "Cache-Control": _no_store(),
                            "Content-Disposition": _header(
                                {"type": "string", "pattern": '^attachment; filename=".+\\.p7m"$'},
                                "A file name: the code",
                            ),
                        },
                        "content": {"application/pkcs7-mime": {"schema": _DER}},
                    },
                    **_problems(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/v1/certificates/{code}/status": {
            "post": {
                "summary": "The issuing office changes a proof's status",
                "description": "valid ⇄ pledged; valid → changed (superseded_by: a newer "
                "valid proof of the same holder and type); → revoked | cancelled | abolished "
                "(terminal, 409 afterwards). 'expired' is derived from valid_until.",
                "security": _BEARER,
                "parameters": [_CODE_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {
                                    "status": {
                                        "enum": [s.value for s in Status if s is not Status.EXPIRED]
                                    },
                                    "reason": _text(MAX_REASON),
                                    "superseded_by": _nullable(_text(MAX_CODE_TEXT)),
                                },
                                "superseded_by",
                            )
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        "Changed, durable, caches invalidated; with the history",
                        _ref("StatusHistory"),
                        cache="no-store",
                    ),
                    **_problems(400, 401, 403, 404, 408, 409, 413, 422, 429, 503),
                },
            },
            "get": {
                "summary": "Current status and the history of changes (issuing office only)",
                "security": _BEARER,
                "parameters": [_CODE_PARAMETER],
                "responses": {
                    "200": _json("Status and history", _ref("StatusHistory"), cache="no-store"),
                    **_problems(401, 403, 404, 429, 503),
                },
            },
        },
        "/v1/proofs": {
            "get": {
                "summary": "Reuse: the holder's current valid proofs of a type",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "holder_id",
                        "in": "query",
                        "required": True,
                        "description": "身份证号 or 统一社会信用代码; it decides the holder's kind",
                        "schema": _text(MAX_HOLDER_ID),
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "required": True,
                        "schema": _text(MAX_PROOF_TYPE),
                    },
                    _PURPOSE,
                ],
                "responses": {
                    "200": _json(
                        "The proofs, holder masked (none found counts as a failed lookup)",
                        _object({"items": {"type": "array", "items": _ref("StatusView")}}),
                        cache="no-store",
                    ),
                    **_problems(400, 401, 403, 429, 503),
                },
            }
        },
        "/v1/verify/document": {
            "post": {
                "summary": "Check a presented sealed proof: seal, chain and current status",
                "security": _BEARER,
                "parameters": [_PURPOSE],
                "requestBody": {
                    "required": True,
                    "content": {"application/pkcs7-mime": {"schema": _DER}},
                },
                "responses": {
                    "200": _json(
                        "The seal holds; the registered status", _DOCUMENT_CHECK, cache="no-store"
                    ),
                    **_problems(400, 401, 403, 408, 413, 422, 503),
                },
            }
        },
        "/v1/trust": {
            "get": {
                "summary": "Trust list: roots and seal certificates",
                "responses": {"200": _json("The trust list", _TRUST, cache="max-age=60")},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": {"200": _json("Alive", _object({"status": {"const": "ok"}}))},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness of HSM, registry, audit trail and cache",
                "responses": {
                    "200": _json("Ready", _READINESS),
                    "503": _json("Not ready: the checks say what is not", _READINESS),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": _json(
                        "OpenAPI 3.1",
                        {"type": "object", "required": ["openapi", "info", "paths"]},
                    )
                },
            }
        },
    },
}

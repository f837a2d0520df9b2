"""The OpenAPI 3.1 description of the HTTP interface (served at ``/openapi.json``).

Every answer of every route is described: each success with the schema of exactly what
its handler sends, each refusal as problem details with the codes it may carry. The
limits and patterns of requests are the names :mod:`sealgate.gateway.requests` checks
them with, and the enumerations are the domain's own. tests/gateway/test_openapi_conformance.py
runs schemathesis against a real gateway with this document.
"""

from __future__ import annotations

from typing import Any

from sealgate.gateway.catalog import CRL_MAX_AGE
from sealgate.gateway.openapi_admin import ADMIN_PATHS
from sealgate.gateway.openapi_notices import NOTICE_PATHS
from sealgate.gateway.openapi_qr import (
    CHECK_PATHS,
    CONSENT_PATHS,
    CONSENT_TOKEN,
    HOLDER_PATHS,
    QR_PATHS,
)
from sealgate.gateway.openapi_requests import REQUEST_PATHS
from sealgate.gateway.openapi_schemas import (
    BEARER,
    CODE_PARAMETER,
    DER,
    DOCUMENT_CHECK,
    EXAMPLE_CODE,
    FIELDS,
    PROBLEM_CODES,
    PROOF_REQUEST,
    PURPOSE,
    READINESS,
    REQUEST_ID_HEADER,
    SEALED,
    SEALED_BATCH,
    STATUS_HISTORY,
    STATUS_VIEW,
    TRUST,
    VERIFY_BATCH,
    VERIFY_BATCH_ANSWER,
    VERIFY_VIEW,
    header,
    json_answer,
    no_store_header,
    nullable,
    object_schema,
    problem_response,
    problems,
    ref,
    text_schema,
)
from sealgate.gateway.requests import (
    MAX_BATCH,
    MAX_CODE_TEXT,
    MAX_HOLDER_ID,
    MAX_IDEMPOTENCY_KEY,
    MAX_PROOF_TYPE,
    MAX_REASON,
)
from sealgate.verify.lifecycle import DERIVED
from sealgate.verify.registry import Status

__all__ = ["EXAMPLE_CODE", "OPENAPI", "PROBLEM_CODES"]

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
                **object_schema(
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
            "ProofRequest": PROOF_REQUEST,
            "SealedProof": SEALED,
            "SealedBatch": SEALED_BATCH,
            "StatusView": STATUS_VIEW,
            "VerifyView": VERIFY_VIEW,
            "StatusHistory": STATUS_HISTORY,
        },
        "responses": {f"Problem{status}": problem_response(status) for status in PROBLEM_CODES},
    },
    "paths": {
        "/v1/certificates": {
            "post": {
                "summary": f"Seal and register one proof, or a batch of up to {MAX_BATCH:,}",
                "description": "A proof whose valid_until has already passed is refused, the "
                "whole batch with it (422 validity-ended), unless the city issues for the "
                "archive (archival_issuance): then it is sealed and shows expired. Each "
                "201 status is what a verification shows at that moment. An endorsement is "
                "never typed (422 endorsement-not-typed): the platform fills it in the answer "
                "to a verification request.",
                "security": BEARER,
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
                                    ref("ProofRequest"),
                                    object_schema(
                                        {
                                            "items": {
                                                "type": "array",
                                                "minItems": 1,
                                                "maxItems": MAX_BATCH,
                                                "items": ref("ProofRequest"),
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
                            "X-Request-Id": REQUEST_ID_HEADER,
                            "Idempotent-Replayed": header(
                                {"const": "true"},
                                "Answered from an earlier request with this Idempotency-Key",
                                required=False,
                            ),
                            "Sealgate-Timestamped": header(
                                {"enum": ["true", "false"]},
                                "Whether the proofs carry a TSA's signature timestamp "
                                "(CAdES-B-T); false: the gateway has no TSA, or (with "
                                "tsa_unavailable = seal-untimestamped) its TSA could not "
                                "stamp them and they rest on their signing time alone",
                            ),
                        },
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [ref("SealedProof"), ref("SealedBatch")]}
                            }
                        },
                    },
                    **problems(400, 401, 403, 408, 413, 422, 503),
                },
            }
        },
        "/v1/verify/{code}": {
            "get": {
                "summary": "Current status of a proof, holder masked; with fields=content "
                "also its content, where the purpose's matter grants it",
                "security": BEARER,
                "parameters": [CODE_PARAMETER, PURPOSE, FIELDS, CONSENT_TOKEN],
                "responses": {
                    "200": json_answer("The proof's status", ref("VerifyView"), cache="no-store"),
                    **problems(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/v1/certificates/{code}/document": {
            "get": {
                "summary": "The sealed proof (DER CMS), to a verifier or its issuing office",
                "security": BEARER,
                "parameters": [
                    CODE_PARAMETER,
                    {
                        **PURPOSE,
                        "required": False,
                        "description": "Required of verifiers in the purpose-only mode",
                    },
                    CONSENT_TOKEN,
                ],
                "responses": {
                    "200": {
                        "description": "The sealed proof",
                        "headers": {
                            "X-Request-Id": REQUEST_ID_HEADER,
                            "Cache-Control": no_store_header(),
                            "Content-Disposition": header(
                                {"type": "string", "pattern": '^attachment; filename=".+\\.p7m"$'},
                                "A file name: the code",
                            ),
                        },
                        "content": {"application/pkcs7-mime": {"schema": DER}},
                    },
                    **problems(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/v1/certificates/{code}/status": {
            "post": {
                "summary": "The issuing office changes a proof's status",
                "description": "valid ⇄ pledged; valid → changed (superseded_by: a newer "
                "valid proof of the same holder and type); → revoked | cancelled | abolished "
                "(terminal, 409 afterwards). 'expired' (from valid_until on) and "
                "'not-yet-valid' (before valid_from) are derived, never set; a proof not yet "
                "valid cannot be pledged (409 not-yet-valid).",
                "security": BEARER,
                "parameters": [CODE_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": object_schema(
                                {
                                    "status": {
                                        "enum": [s.value for s in Status if s not in DERIVED]
                                    },
                                    "reason": text_schema(MAX_REASON),
                                    "superseded_by": nullable(text_schema(MAX_CODE_TEXT)),
                                },
                                "superseded_by",
                            )
                        }
                    },
                },
                "responses": {
                    "200": json_answer(
                        "Changed, durable, caches invalidated; with the history",
                        ref("StatusHistory"),
                        cache="no-store",
                    ),
                    **problems(400, 401, 403, 404, 408, 409, 413, 422, 429, 503),
                },
            },
            "get": {
                "summary": "Current status and the history of changes (issuing office only)",
                "security": BEARER,
                "parameters": [CODE_PARAMETER],
                "responses": {
                    "200": json_answer(
                        "Status and history", ref("StatusHistory"), cache="no-store"
                    ),
                    **problems(401, 403, 404, 429, 503),
                },
            },
        },
        "/v1/proofs": {
            "get": {
                "summary": "Reuse: the holder's current valid proofs of a type",
                "description": "Only proofs in force now: none expired, none whose "
                "valid_from is still ahead (not-yet-valid).",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "holder_id",
                        "in": "query",
                        "required": True,
                        "description": "身份证号 or 统一社会信用代码; it decides the holder's kind",
                        "schema": text_schema(MAX_HOLDER_ID),
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "required": True,
                        "schema": text_schema(MAX_PROOF_TYPE),
                    },
                    PURPOSE,
                    CONSENT_TOKEN,
                ],
                "responses": {
                    "200": json_answer(
                        "The proofs, holder masked (none found counts as a failed lookup)",
                        object_schema({"items": {"type": "array", "items": ref("StatusView")}}),
                        cache="no-store",
                    ),
                    **problems(400, 401, 403, 429, 503),
                },
            }
        },
        "/v1/verify/document": {
            "post": {
                "summary": "Check a presented sealed proof: seal, chain and current status",
                "security": BEARER,
                "parameters": [PURPOSE],
                "requestBody": {
                    "required": True,
                    "content": {"application/pkcs7-mime": {"schema": DER}},
                },
                "responses": {
                    "200": json_answer(
                        "The seal holds; the registered status", DOCUMENT_CHECK, cache="no-store"
                    ),
                    **problems(400, 401, 403, 408, 413, 422, 503),
                },
            }
        },
        **QR_PATHS,
        **CHECK_PATHS,
        **CONSENT_PATHS,
        **HOLDER_PATHS,
        "/v1/verify/batch": {
            "post": {
                "summary": "Check up to 100 codes for one purpose, each its own status or problem",
                "description": "Every code not found counts as a failed lookup, as on "
                "/v1/verify/{code}; once the client's budget is spent the remaining items "
                "are 429 problems. An item with holder_id is answered holder_match.",
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": VERIFY_BATCH}},
                },
                "responses": {
                    "200": json_answer(
                        "Each item's outcome, in order", VERIFY_BATCH_ANSWER, cache="no-store"
                    ),
                    **problems(400, 401, 403, 408, 413, 503),
                },
            }
        },
        "/v1/trust": {
            "get": {
                "summary": "The trust document: roots and seal keys with their validity and "
                "retirement, and the gateway's QR, status-list and consent keys, versioned "
                "and signed by the city root",
                "responses": {
                    "200": json_answer("The signed trust document", TRUST, cache="max-age=60"),
                    **problems(503),
                },
            }
        },
        "/v1/crl": {
            "get": {
                "summary": "The city root's newest CRL of seal certificates (DER, RFC 5280)",
                "description": "What the seal certificates' CRL distribution point names. "
                "Issued offline by the root (sealgate seal revoke, sealgate crl issue) with "
                "a nextUpdate the city sets (default 24 h).",
                "responses": {
                    "200": {
                        "description": "The CRL",
                        "headers": {
                            "X-Request-Id": REQUEST_ID_HEADER,
                            "Cache-Control": header(
                                {"const": f"public, max-age={CRL_MAX_AGE}"},
                                "How long it may be kept",
                            ),
                            "ETag": header(
                                {"type": "string", "pattern": '^"crl-[0-9]+"$'},
                                "The CRL's number",
                            ),
                        },
                        "content": {"application/pkix-crl": {"schema": DER}},
                    },
                    **problems(404),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": {
                    "200": json_answer("Alive", object_schema({"status": {"const": "ok"}}))
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness of HSM, registry, audit trail and cache",
                "responses": {
                    "200": json_answer("Ready", READINESS),
                    "503": json_answer("Not ready: the checks say what is not", READINESS),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "description": "Behind a bearer token of its own when one is set"
                " (SEALGATE_METRICS_TOKEN or secrets/metrics-token)",
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "headers": {"X-Request-Id": REQUEST_ID_HEADER},
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **problems(401),
                },
            }
        },
        **REQUEST_PATHS,
        **ADMIN_PATHS,
        **NOTICE_PATHS,
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": json_answer(
                        "OpenAPI 3.1",
                        {"type": "object", "required": ["openapi", "info", "paths"]},
                    )
                },
            }
        },
    },
}

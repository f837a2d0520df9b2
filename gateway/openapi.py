"""The OpenAPI 3.1 description of the HTTP interface (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_PURPOSE = {
    "name": "purpose",
    "in": "query",
    "required": True,
    "description": "The business the check is for; must be granted to the client.",
    "schema": {"type": "string", "maxLength": 64},
}
_CODE = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "Unified verification code, e.g. 430900-7K3M9Q-ZX4T2B-H8WDQ5 "
    "(case-insensitive, hyphens optional, O/I/L read as 0/1/1).",
    "schema": {"type": "string", "maxLength": 64},
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 256}
_INSTANT = {"type": "string", "description": "RFC 3339 date (China time) or date-time"}

_PROOF_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seal_id", "type", "holder", "content", "valid_from"],
    "properties": {
        "seal_id": {"type": "string", "maxLength": 64},
        "type": {"type": "string", "maxLength": 64, "examples": ["无犯罪记录证明"]},
        "holder": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "id", "name"],
            "properties": {
                "kind": {"enum": ["person", "org"]},
                "id": {
                    "type": "string",
                    "description": "身份证号 (GB 11643) or 统一社会信用代码 (GB 32100)",
                },
                "name": {"type": "string", "maxLength": 128},
            },
        },
        "content": {"type": "object"},
        "valid_from": _INSTANT,
        "valid_until": _INSTANT,
        "endorsement": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"extracting_unit": _TEXT, "verifying_unit": _TEXT},
        },
    },
}

_SEALED = {
    "type": "object",
    "required": ["code", "status", "issued_at", "seal_id", "document"],
    "properties": {
        "code": {"type": "string"},
        "status": {"type": "string"},
        "issued_at": {"type": "string", "format": "date-time"},
        "seal_id": {"type": "string"},
        "document": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "the sealed proof, DER CMS SignedData",
        },
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "sealgate",
        "version": "1",
        "description": "Sealing and verification gateway of a certificate-free city.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem details with a stable `code`",
                "content": {
                    "application/problem+json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "title": {"type": "string"},
                                "status": {"type": "integer"},
                                "code": {"type": "string"},
                                "detail": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
        "schemas": {"ProofRequest": _PROOF_REQUEST, "SealedProof": _SEALED},
    },
    "paths": {
        "/v1/certificates": {
            "post": {
                "summary": "Seal and register one proof, or a batch of up to 1,000",
                "security": _BEARER,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/ProofRequest"},
                                    {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["items"],
                                        "properties": {
                                            "items": {
                                                "type": "array",
                                                "minItems": 1,
                                                "maxItems": 1000,
                                                "items": {
                                                    "$ref": "#/components/schemas/ProofRequest"
                                                },
                                            }
                                        },
                                    },
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "sealed and durably registered",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/SealedProof"},
                                        {
                                            "type": "object",
                                            "properties": {
                                                "items": {
                                                    "type": "array",
                                                    "items": {
                                                        "$ref": "#/components/schemas/SealedProof"
                                                    },
                                                }
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "413": _PROBLEM,
                    "422": _PROBLEM,
                    "503": _PROBLEM,
                },
            }
        },
        "/v1/verify/{code}": {
            "get": {
                "summary": "Current status of a proof, holder masked",
                "security": _BEARER,
                "parameters": [_CODE, _PURPOSE],
                "responses": {
                    "200": {"description": "the proof's status"},
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                },
            }
        },
        "/v1/certificates/{code}/document": {
            "get": {
                "summary": "The sealed proof (DER CMS)",
                "security": _BEARER,
                "parameters": [
                    _CODE,
                    {**_PURPOSE, "required": False, "description": "required for verifiers"},
                ],
                "responses": {
                    "200": {
                        "description": "the sealed proof",
                        "content": {"application/pkcs7-mime": {}},
                    },
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
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
                "parameters": [_CODE],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["status", "reason"],
                                "properties": {
                                    "status": {
                                        "enum": [
                                            "valid",
                                            "pledged",
                                            "changed",
                                            "revoked",
                                            "cancelled",
                                            "abolished",
                                        ]
                                    },
                                    "reason": {"type": "string", "maxLength": 500},
                                    "superseded_by": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "changed, durable, caches invalidated; with history"},
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                    "422": _PROBLEM,
                },
            },
            "get": {
                "summary": "Current status and the history of changes (issuing office only)",
                "security": _BEARER,
                "parameters": [_CODE],
                "responses": {
                    "200": {"description": "status and history"},
                    "403": _PROBLEM,
                    "404": _PROBLEM,
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
                        "schema": {"type": "string", "maxLength": 18},
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 64},
                    },
                    _PURPOSE,
                ],
                "responses": {
                    "200": {"description": "the proofs, holder masked"},
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                },
            }
        },
        "/v1/verify/document": {
            "post": {
                "summary": "Check a presented sealed proof: seal, chain and current status",
                "security": _BEARER,
                "parameters": [_PURPOSE],
                "requestBody": {"required": True, "content": {"application/pkcs7-mime": {}}},
                "responses": {
                    "200": {"description": "seal valid; registered status"},
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "413": _PROBLEM,
                    "422": _PROBLEM,
                },
            }
        },
        "/v1/trust": {
            "get": {
                "summary": "Trust list: roots and seal certificates",
                "responses": {"200": {"description": "the trust list"}},
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness of HSM, registry, audit trail and cache",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format"}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    },
}

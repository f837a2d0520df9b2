"""The OpenAPI description of 亮码扫码: QR codes, status lists, the online QR check."""

from __future__ import annotations

from typing import Any

from sealgate.gateway.handlers.check import MAX_INPUT
from sealgate.gateway.handlers.qr import FORMATS, VARIANTS
from sealgate.gateway.openapi_schemas import (
    BEARER,
    CODE_PARAMETER,
    DER,
    REQUEST_ID_HEADER,
    STATUS_OPTIONAL,
    STATUS_VIEW,
    header,
    json_answer,
    no_store_header,
    object_schema,
    problems,
)
from sealgate.gateway.requests import MAX_CONSENT_TYPES, MAX_CONSENT_USES, MAX_HOLDER_ID
from sealgate.verify.holders import HolderKind

Schema = dict[str, Any]

_INSTANT: Schema = {"type": "string", "format": "date-time"}
QR_ANSWER = object_schema(
    {
        "payload": {
            "type": "string",
            "pattern": "^SG1:[0-9A-Z $%*+./:-]+$",
            "description": "Base45 of zlib of a COSE_Sign1 (CWT claims): the QR code's text",
        },
        "code": STATUS_VIEW["properties"]["code"],
        "issued_at": _INSTANT,
        "expires_at": {**_INSTANT, "type": ["string", "null"]},
        "status_list": object_schema(
            {"uri": {"type": "string"}, "idx": {"type": "integer", "minimum": 0}}
        ),
        "qr_version": {"type": "integer", "minimum": 1, "maximum": 40},
    }
)
_QR_CHECK_PROPERTIES = {
    **STATUS_VIEW["properties"],
    "holder": object_schema(
        {
            "kind": {"enum": [k.value for k in HolderKind]},
            "name": {"type": "string", "description": "Masked: 张*"},
        }
    ),
    "payload_expires_at": {**_INSTANT, "type": ["string", "null"]},
}
QR_CHECK = object_schema(_QR_CHECK_PROPERTIES, *STATUS_OPTIONAL)


def _binary(description: str, media_type: str, **headers: Schema) -> Schema:
    return {
        "description": description,
        "headers": {"X-Request-Id": REQUEST_ID_HEADER, **headers},
        "content": {media_type: {"schema": DER}},
    }


_LIST_CACHE = {
    "Cache-Control": header(
        {"type": "string", "pattern": "^public, max-age=[0-9]+$"},
        "Half the city's status_list_bound: a CDN may keep it that long",
    ),
    "ETag": header({"type": "string"}, "The token's digest"),
    "Last-Modified": header({"type": "string"}, "When the list was signed"),
}

QR_PATHS: dict[str, Any] = {
    "/v1/certificates/{code}/qr": {
        "get": {
            "summary": "亮码: the proof's QR code, for the portal acting for its holder",
            "description": "A COSE_Sign1 signed by the gateway's QR key in the HSM; the "
            "dynamic variant expires after the city's qr_lifetime (60-120 s). A proof "
            "changed, ended or expired gets none (409 not-showable).",
            "security": BEARER,
            "parameters": [
                CODE_PARAMETER,
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": list(FORMATS)},
                },
                {
                    "name": "variant",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": list(VARIANTS)},
                },
            ],
            "responses": {
                "200": {
                    "description": "The payload (JSON), or the QR code as SVG or PNG",
                    "headers": {
                        "X-Request-Id": REQUEST_ID_HEADER,
                        "Cache-Control": no_store_header(),
                    },
                    "content": {
                        "application/json": {"schema": QR_ANSWER},
                        "image/svg+xml": {"schema": DER},
                        "image/png": {"schema": DER},
                    },
                },
                **problems(400, 401, 403, 404, 409, 429, 503),
            },
        }
    },
    "/v1/verify/qr/{payload}": {
        "get": {
            "summary": "扫码 online: a scanned payload's signature, then the live status",
            "security": BEARER,
            "parameters": [
                {
                    "name": "payload",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                },
            ],
            "responses": {
                "200": json_answer("The proof's status, holder masked", QR_CHECK, cache="no-store"),
                **problems(401, 403, 404, 422, 429, 503),
            },
        }
    },
    "/v1/status-lists/{list_id}": {
        "get": {
            "summary": "A Token Status List (CWT, 2 bits a proof), signed in the HSM",
            "description": "0 valid, 1 revoked-or-ended, 2 pledged, 3 changed. A change is "
            "in it within the city's status_list_bound, CDN caching included.",
            "parameters": [
                {"name": "list_id", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": _binary("The signed list", "application/statuslist+cwt", **_LIST_CACHE),
                "304": {
                    "description": "Not modified since the ETag given",
                    "headers": {"X-Request-Id": REQUEST_ID_HEADER, **_LIST_CACHE},
                },
                **problems(404),
            },
        }
    },
}


_PAGE_HEADERS = {
    "X-Request-Id": REQUEST_ID_HEADER,
    "Content-Security-Policy": header({"type": "string"}, "Only its own script"),
    "Cache-Control": header({"const": "public, max-age=300"}, "How long it may be kept"),
}
PUBLIC_CHECK = object_schema(
    {
        "valid": {"type": "boolean"},
        "type": {"type": "string"},
        "unit_name": {"type": "string"},
        "valid_from": {"type": "string"},
        "valid_until": {"type": ["string", "null"]},
    }
)
CHECK_PATHS: dict[str, Any] = {
    "/check": {
        "get": {
            "summary": "The public check page (zh-CN): valid or not, type, unit, dates",
            "parameters": [
                {"name": "code", "in": "query", "required": False, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "The page",
                    "headers": _PAGE_HEADERS,
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/check/check.js": {
        "get": {
            "summary": "The check page's script",
            "responses": {
                "200": {
                    "description": "The script",
                    "headers": _PAGE_HEADERS,
                    "content": {"text/javascript": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/v1/public/check": {
        "get": {
            "summary": "The check page's question: a code or a scanned payload, no token",
            "description": "Throttled per client address (check_per_minute, a city setting): "
            "429 too-many-checks with a Chinese detail.",
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_INPUT},
                }
            ],
            "responses": {
                "200": json_answer(
                    "Valid or not, and nothing of the holder", PUBLIC_CHECK, cache="no-store"
                ),
                **problems(400, 404, 422, 429, 503),
            },
        }
    },
}


CONSENT_TOKEN: Schema = {
    "name": "Consent-Token",
    "in": "header",
    "required": False,
    "description": "The holder's consent (compact JWS from POST /v1/consents), required of "
    "verifiers unless the city keeps the purpose-only mode (consent_required = false)",
    "schema": {"type": "string"},
}
_CONSENT_VIEW: dict[str, Schema] = {
    "consent_id": {"type": "string"},
    "grantee": {"type": "string"},
    "matter": {"type": "string"},
    "proof_types": {"type": "array", "items": {"type": "string"}},
    "expires_at": _INSTANT,
    "uses_left": {"type": "integer", "minimum": 0},
    "revoked": {"type": "boolean"},
}
_HOLDER_ID_QUERY: Schema = {
    "name": "holder_id",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_HOLDER_ID},
}
CONSENT_PATHS: dict[str, Any] = {
    "/v1/consents": {
        "post": {
            "summary": "A holder consents (through the portal) to a unit reading proofs",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": object_schema(
                            {
                                "holder_id": {"type": "string", "maxLength": MAX_HOLDER_ID},
                                "grantee": {"type": "string", "description": "client id"},
                                "matter": {
                                    "type": "string",
                                    "description": "事项: a matter of the city's table, by id",
                                },
                                "proof_types": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_CONSENT_TYPES,
                                    "items": {"type": "string"},
                                },
                                "expires_at": {"type": "string"},
                                "uses": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "maximum": MAX_CONSENT_USES,
                                },
                            }
                        )
                    }
                },
            },
            "responses": {
                "201": json_answer(
                    "Granted; the token is the verifier's to present",
                    object_schema({**_CONSENT_VIEW, "token": {"type": "string"}}),
                    cache="no-store",
                ),
                **problems(400, 401, 403, 408, 413, 422, 503),
            },
        },
        "get": {
            "summary": "The holder's consents, revoked and expired ones included",
            "security": BEARER,
            "parameters": [_HOLDER_ID_QUERY],
            "responses": {
                "200": json_answer(
                    "The consents",
                    object_schema(
                        {"items": {"type": "array", "items": object_schema(_CONSENT_VIEW)}}
                    ),
                    cache="no-store",
                ),
                **problems(400, 401, 403, 503),
            },
        },
    },
    "/v1/consents/{consent_id}": {
        "delete": {
            "summary": "The holder revokes a consent",
            "security": BEARER,
            "parameters": [
                {
                    "name": "consent_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
                _HOLDER_ID_QUERY,
            ],
            "responses": {
                "204": {
                    "description": "Revoked",
                    "headers": {
                        "X-Request-Id": REQUEST_ID_HEADER,
                        "Cache-Control": no_store_header(),
                    },
                },
                **problems(400, 401, 403, 404, 503),
            },
        }
    },
}


_ASSERTION: Schema = {
    "name": "Holder-Assertion",
    "in": "header",
    "required": True,
    "description": "The identity platform's signed assertion of the holder (compact JWS, "
    "typ sealgate-holder+jwt, aud sealgate, sub the identity number, at most 300 s)",
    "schema": {"type": "string"},
}
HOLDER_PATHS: dict[str, Any] = {
    "/v1/holders/me/proofs": {
        "get": {
            "summary": "The holder's own proofs, in any status, for the portal",
            "security": BEARER,
            "parameters": [_ASSERTION],
            "responses": {
                "200": json_answer(
                    "The holder's proofs, newest first",
                    object_schema({"items": {"type": "array", "items": STATUS_VIEW}}),
                    cache="no-store",
                ),
                **problems(401, 403, 503),
            },
        }
    },
    "/v1/holders/me/proofs/{code}/document": {
        "get": {
            "summary": "One of the holder's own sealed proofs (DER CMS)",
            "security": BEARER,
            "parameters": [CODE_PARAMETER, _ASSERTION],
            "responses": {
                "200": _binary(
                    "The sealed proof",
                    "application/pkcs7-mime",
                    **{"Cache-Control": no_store_header()},
                ),
                **problems(401, 403, 404, 429, 503),
            },
        }
    },
}

"""The admin role's provisioning routes in /openapi.json (docs/design.md §6.2), each limit
the name :mod:`sealgate.gateway.administration` or the handler checks."""

from __future__ import annotations

from typing import Any

from sealgate.gateway.administration import (
    DEFAULT_LIMIT_WINDOW,
    MAX_CLIENT_NAME,
    MAX_GRANTED_PURPOSE,
    MAX_GRANTS,
    MAX_ID,
)
from sealgate.gateway.openapi_requests import OPERATOR
from sealgate.gateway.openapi_schemas import (
    BEARER,
    INSTANT_ANSWER,
    Schema,
    json_answer,
    nullable,
    object_schema,
    problems,
    text_schema,
)
from sealgate.gateway.requests import MAX_SEAL_ID
from sealgate.verify.directory import KeyState, Role, SealKind, SealScope

_ROLE: Schema = {"enum": [r.value for r in Role]}
_GRANTS: dict[str, Schema] = {
    "role": _ROLE,
    "seals": {
        "type": "array",
        "maxItems": MAX_GRANTS,
        "items": text_schema(MAX_SEAL_ID),
        "description": "Seals a signer may use",
    },
    "purposes": {
        "type": "array",
        "maxItems": MAX_GRANTS,
        "items": text_schema(MAX_GRANTED_PURPOSE),
        "description": "Purposes a verifier may check codes for",
    },
    "office": {
        **nullable(text_schema(64)),
        "description": "统一社会信用代码 of an issuer's, a requester's or an answering "
        "signer's office",
    },
}
_LIMIT = object_schema(
    {
        "failed_lookups": {"type": "integer", "minimum": 1},
        "window_seconds": {"type": "number", "exclusiveMinimum": 0},
    }
)
CLIENT_VIEW = object_schema(
    {
        "client_id": {"type": "string"},
        "name": {"type": "string"},
        "role": _ROLE,
        "office": {"type": ["string", "null"]},
        "seals": {"type": "array", "items": {"type": "string"}},
        "purposes": {"type": "array", "items": {"type": "string"}},
        "lookup_limit": {
            "oneOf": [_LIMIT, {"type": "null"}],
            "description": "The client's own limit on failed lookups (null: the city's)",
        },
        "created_at": INSTANT_ANSWER,
    }
)
_NEW_CLIENT = object_schema(
    {
        **CLIENT_VIEW["properties"],
        "token": {
            "type": "string",
            "description": "The client's bearer token: in this answer only (the gateway "
            "keeps its digest)",
        },
    }
)
SEAL_VIEW = object_schema(
    {
        "seal_id": {"type": "string"},
        "kind": {"enum": [k.value for k in SealKind]},
        "scope": {"enum": [s.value for s in SealScope]},
        "unit_name": {"type": "string"},
        "unit_code": {"type": "string"},
        "suspended_at": {
            **nullable(INSTANT_ANSWER),
            "description": "Since when nothing is sealed with it (null: in use)",
        },
        "keys": {
            "type": "array",
            "items": object_schema(
                {
                    "version": {"type": "integer"},
                    "state": {"enum": [s.value for s in KeyState]},
                    "not_after": INSTANT_ANSWER,
                }
            ),
        },
    }
)


def _path_id(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": text_schema(MAX_ID)}


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _change(summary: str, parameter: str, answer: Schema, **more: Any) -> dict[str, Any]:
    """A change to one client or seal, answered with it as it now is."""
    return {
        "summary": summary,
        "security": BEARER,
        "parameters": [_path_id(parameter), OPERATOR],
        **more,
        "responses": {
            "200": json_answer("Made, audited and signed", answer, cache="no-store"),
            **problems(400, 401, 403, 404, 408, 413, 422, 503),
        },
    }


ADMIN_PATHS: dict[str, Any] = {
    "/v1/admin/clients": {
        "get": {
            "summary": "Every client, its grants and limit (never a token)",
            "security": BEARER,
            "responses": {
                "200": json_answer(
                    "By id",
                    object_schema({"items": {"type": "array", "items": CLIENT_VIEW}}),
                    cache="no-store",
                ),
                **problems(401, 403, 503),
            },
        },
        "post": {
            "summary": "Add a client; its token is in the answer, once",
            "description": "As `sealgate client add`: the same checks and audit records "
            "(client-add), signed by a checkpoint before the answer.",
            "security": BEARER,
            "parameters": [OPERATOR],
            "requestBody": _json_body(
                object_schema(
                    {"name": text_schema(MAX_CLIENT_NAME), **_GRANTS},
                    "seals",
                    "purposes",
                    "office",
                )
            ),
            "responses": {
                "201": json_answer("Added", _NEW_CLIENT, cache="no-store"),
                **problems(400, 401, 403, 408, 413, 422, 503),
            },
        },
    },
    "/v1/admin/clients/{client_id}": {
        "delete": {
            "summary": "Remove a client: its token is refused here at once, everywhere within 10 s",
            "security": BEARER,
            "parameters": [_path_id("client_id"), OPERATOR],
            "responses": {
                "204": {"description": "Removed, audited and signed"},
                **problems(400, 401, 403, 404, 503),
            },
        }
    },
    "/v1/admin/clients/{client_id}/grants": {
        "put": _change(
            "Replace a client's role, seals, purposes and office (everywhere within 10 s)",
            "client_id",
            CLIENT_VIEW,
            requestBody=_json_body(object_schema(_GRANTS, "seals", "purposes", "office")),
        )
    },
    "/v1/admin/clients/{client_id}/limits": {
        "put": _change(
            "Give a client its own limit on failed lookups",
            "client_id",
            CLIENT_VIEW,
            requestBody=_json_body(
                object_schema(
                    {
                        "failed_lookups": {"type": "integer", "minimum": 1},
                        "window_seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "description": f"Default {DEFAULT_LIMIT_WINDOW:g}",
                        },
                    },
                    "window_seconds",
                )
            ),
        ),
        "delete": _change("Back to the city's limit on failed lookups", "client_id", CLIENT_VIEW),
    },
    "/v1/admin/seals": {
        "get": {
            "summary": "Every seal, its key versions and whether it is suspended",
            "security": BEARER,
            "responses": {
                "200": json_answer(
                    "By id",
                    object_schema({"items": {"type": "array", "items": SEAL_VIEW}}),
                    cache="no-store",
                ),
                **problems(401, 403, 503),
            },
        }
    },
    "/v1/admin/seals/{seal_id}/suspend": {
        "post": _change(
            "Suspend a seal (misuse): nothing is sealed with it until resumed; what it "
            "sealed keeps verifying",
            "seal_id",
            SEAL_VIEW,
        )
    },
    "/v1/admin/seals/{seal_id}/resume": {
        "post": _change("Resume a suspended seal", "seal_id", SEAL_VIEW)
    },
}

"""The verification requests' part of /openapi.json (docs/design.md §12): their routes,
bodies and views, each limit the name :mod:`sealgate.gateway.request_parsing` checks."""

from __future__ import annotations

from typing import Any

from sealgate.gateway.openapi_schemas import (
    BEARER,
    CODE_SCHEMA,
    INSTANT_ANSWER,
    PROOF_REQUEST,
    Schema,
    json_answer,
    nullable,
    object_schema,
    problems,
    text_schema,
)
from sealgate.gateway.request_parsing import MAX_CASE_REF, MAX_LIST, MAX_MATTER, MAX_OPERATOR
from sealgate.gateway.requests import MAX_HOLDER_ID, MAX_PROOF_TYPE, MAX_REASON
from sealgate.verify.requests import Action, Mode, State, Tier

_UNIT = object_schema({"unit_name": {"type": "string"}, "unit_code": {"type": "string"}})
OPERATOR: Schema = {
    "name": "X-Operator",
    "in": "header",
    "required": True,
    "description": "The acting staff member's identifier (宁波 第十四条/第十七条), recorded in "
    "the audit trail: a letter, then letters, digits, '.', '_' or '-'; never a name or an "
    "identity number",
    "schema": {
        "type": "string",
        "maxLength": MAX_OPERATOR,
        "pattern": "^[A-Za-z][A-Za-z0-9._-]{0,63}$",
    },
}
_ID: Schema = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_HOLDER = object_schema(
    {
        "kind": {"enum": ["person", "org"]},
        "id": text_schema(MAX_HOLDER_ID),
        "name": PROOF_REQUEST["properties"]["holder"]["properties"]["name"],
    }
)
NEW_REQUEST = object_schema(
    {
        "responder": text_schema(MAX_HOLDER_ID, description="统一社会信用代码 of the office asked"),
        "type": text_schema(MAX_PROOF_TYPE, examples=["无犯罪记录证明"]),
        "holder": _HOLDER,
        "matter": text_schema(MAX_MATTER, description="事项: the matter being handled"),
        "case_ref": text_schema(MAX_CASE_REF, description="The requesting office's case"),
        "mode": {"enum": [m.value for m in Mode]},
        "tier": {
            "enum": [t.value for t in Tier],
            "description": "verify: database (30 minutes), paper (1 working day), archive "
            "(2, +5 once); issue: online (1), complex (2, +5 once)",
        },
    }
)
_ANSWER = object_schema(
    {k: v for k, v in PROOF_REQUEST["properties"].items() if k not in ("type", "endorsement")},
    "valid_until",
)
_VIEW_FIELDS: dict[str, Schema] = {
    "id": {"type": "string"},
    "mode": {"enum": [m.value for m in Mode]},
    "tier": {"enum": [t.value for t in Tier]},
    "state": {"enum": [s.value for s in State]},
    "requester": _UNIT,
    "responder": _UNIT,
    "type": {"type": "string"},
    "holder": object_schema(
        {"kind": {"type": "string"}, "name": {"type": "string"}, "id": {"type": "string"}}
    ),
    "matter": {"type": "string"},
    "case_ref": {"type": "string"},
    "registered_at": INSTANT_ANSWER,
    "due_at": INSTANT_ANSWER,
    "provisional": {
        "type": "boolean",
        "description": "due_at falls in a year the working-day calendar does not know: "
        "counted on weekdays until the year is loaded",
    },
    "extendable": {"type": "boolean"},
    "extended": {"type": "boolean"},
    "answered_at": nullable(INSTANT_ANSWER),
    "elapsed_seconds": {"type": ["number", "null"]},
    "answer_code": {"oneOf": [CODE_SCHEMA, {"type": "null"}]},
    "reason": {"type": ["string", "null"]},
}
_EVENT = object_schema(
    {
        "action": {"enum": [a.value for a in Action]},
        "from": {"enum": [*(s.value for s in State), None]},
        "to": {"enum": [s.value for s in State]},
        "tier": {"enum": [t.value for t in Tier]},
        "due_at": INSTANT_ANSWER,
        "reason": {"type": ["string", "null"]},
        "approver": {"type": ["string", "null"]},
        "operator": {"type": "string"},
        "by": {"type": "string"},
        "at": INSTANT_ANSWER,
    }
)
REQUEST_VIEW = object_schema(
    {**_VIEW_FIELDS, "events": {"type": "array", "items": _EVENT}, "document": {"type": "string"}},
    "events",
    "document",
)
HOLDER_VIEW = object_schema(
    {
        k: _VIEW_FIELDS[k]
        for k in (
            "id",
            "mode",
            "state",
            "requester",
            "responder",
            "type",
            "matter",
            "registered_at",
            "due_at",
            "answered_at",
            "answer_code",
            "reason",
        )
    }
)
_LIST = object_schema({"items": {"type": "array", "items": REQUEST_VIEW}})


def _step(summary: str, body: Schema) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": BEARER,
            "parameters": [_ID, OPERATOR],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": json_answer("Done, durable", REQUEST_VIEW, cache="no-store"),
                **problems(400, 401, 403, 404, 408, 409, 413, 422, 503),
            },
        }
    }


_REASON = text_schema(MAX_REASON)
REQUEST_PATHS: dict[str, Any] = {
    "/v1/requests": {
        "post": {
            "summary": "A requesting office sends a request (协查核验 or 在线开具)",
            "description": "Registered and accepted on arrival: its due_at is counted from "
            "now in Asia/Shanghai working days.",
            "security": BEARER,
            "parameters": [OPERATOR],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NEW_REQUEST}},
            },
            "responses": {
                "201": json_answer("Registered and accepted", REQUEST_VIEW, cache="no-store"),
                **problems(400, 401, 403, 408, 413, 422, 503),
            },
        },
        "get": {
            "summary": "A responder's inbox, or a requester's own requests",
            "security": BEARER,
            "parameters": [
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": [s.value for s in State]},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    "description": f"1 to {MAX_LIST}",
                },
            ],
            "responses": {
                "200": json_answer("Soonest due first", _LIST, cache="no-store"),
                **problems(400, 401, 403, 503),
            },
        },
    },
    "/v1/requests/{id}": {
        "get": {
            "summary": "A request with its every step (requester or responder)",
            "security": BEARER,
            "parameters": [_ID],
            "responses": {
                "200": json_answer("The request", REQUEST_VIEW, cache="no-store"),
                **problems(401, 403, 404, 503),
            },
        }
    },
    "/v1/requests/{id}/respond": _step(
        "Answer: sealed with the mode's seal kind, the endorsement filled from the request",
        _ANSWER,
    ),
    "/v1/requests/{id}/reclassify": _step(
        "Move to a slower tier of the same mode, with a reason",
        object_schema({"tier": {"enum": [t.value for t in Tier]}, "reason": _REASON}),
    ),
    "/v1/requests/{id}/extend": _step(
        "Extend an extendable tier once by 5 working days, with approver and reason",
        object_schema({"reason": _REASON, "approver": OPERATOR["schema"]}),
    ),
    "/v1/requests/{id}/return": _step(
        "Return with a reason (outside the office's remit)", object_schema({"reason": _REASON})
    ),
    "/v1/holder-requests": {
        "get": {
            "summary": "The holder's personal space: the requests about a holder",
            "security": BEARER,
            "parameters": [
                {
                    "name": "holder_id",
                    "in": "query",
                    "required": True,
                    "schema": text_schema(MAX_HOLDER_ID),
                }
            ],
            "responses": {
                "200": json_answer(
                    "Newest first, masked, no case file or staff",
                    object_schema({"items": {"type": "array", "items": HOLDER_VIEW}}),
                    cache="no-store",
                ),
                **problems(400, 401, 403, 503),
            },
        }
    },
}

"""Change notices' part of /openapi.json (docs/design.md §18): subscriptions and their
delivery log, each limit the one :mod:`sealgate.gateway.subscribing` checks."""

from __future__ import annotations

from typing import Any

from sealgate.gateway.openapi_schemas import (
    BEARER,
    CODE_SCHEMA,
    INSTANT_ANSWER,
    REQUEST_ID_HEADER,
    Schema,
    json_answer,
    no_store_header,
    nullable,
    object_schema,
    problems,
    text_schema,
)
from sealgate.gateway.request_parsing import MAX_LIST
from sealgate.gateway.requests import MAX_CODE_TEXT, MAX_PURPOSE
from sealgate.gateway.subscribing import MAX_SUBSCRIBED_CODES
from sealgate.gateway.webhooks import MAX_URL
from sealgate.verify.notices import DeliveryState, Event

_EVENTS: Schema = {"enum": [e.value for e in Event]}
_OPERATOR: Schema = {
    "name": "X-Operator",
    "in": "header",
    "required": False,
    "description": "Who at the client made the change (a staff identifier), recorded in "
    "the audit trail when given",
    "schema": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z][A-Za-z0-9._-]{0,63}$"},
}
_ID: Schema = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
NEW_SUBSCRIPTION = object_schema(
    {
        "url": text_schema(
            MAX_URL,
            description="Where notices are POSTed: https://, or http:// to a loopback address"
            " (or anywhere the home allows); never link-local, private or reserved addresses"
            " unless the home lists their network",
        ),
        "events": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _EVENTS},
        "codes": {
            "type": "array",
            "maxItems": MAX_SUBSCRIBED_CODES,
            "items": text_schema(MAX_CODE_TEXT),
            "description": "A verifier's: the codes whose status changes it is told of, each "
            "checked as GET /v1/verify/{code} checks it (an unknown one refuses the "
            "subscription and counts as a failed lookup)",
        },
        "purpose": text_schema(MAX_PURPOSE, description="A verifier's: the purpose it checks for"),
    },
    "codes",
    "purpose",
)
_VIEW_FIELDS: dict[str, Schema] = {
    "id": {"type": "string"},
    "url": {"type": "string"},
    "events": {"type": "array", "items": _EVENTS},
    "codes": {"type": "array", "items": CODE_SCHEMA},
    "purpose": {"type": ["string", "null"]},
    "created_at": INSTANT_ANSWER,
}
SUBSCRIPTION_VIEW = object_schema(_VIEW_FIELDS)
CREATED = object_schema(
    {
        **_VIEW_FIELDS,
        "secret": {
            "type": "string",
            "pattern": "^whsec_[A-Za-z0-9+/]+=*$",
            "description": "The signing secret (Standard Webhooks), shown this once",
        },
    }
)
DELIVERY_VIEW = object_schema(
    {
        "event_id": {"type": "string", "description": "The notice's webhook-id"},
        "type": _EVENTS,
        "occurred_at": INSTANT_ANSWER,
        "state": {"enum": [s.value for s in DeliveryState]},
        "attempts": {"type": "integer", "minimum": 0},
        "last_attempt_at": nullable(INSTANT_ANSWER),
        "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "next_attempt_at": nullable(INSTANT_ANSWER),
    }
)
_LIMIT: Schema = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
    "description": f"1 to {MAX_LIST}, newest first",
}


def _items(schema: Schema) -> Schema:
    return object_schema({"items": {"type": "array", "items": schema}})


NOTICE_PATHS: dict[str, Any] = {
    "/v1/subscriptions": {
        "post": {
            "summary": "Subscribe to change notices (verifier: its codes; requester: its "
            "office's requests)",
            "description": "Notices are POSTed signed the Standard Webhooks way (webhook-id, "
            "webhook-timestamp, webhook-signature), at least once, retried with backoff "
            "for a day; receivers deduplicate by webhook-id.",
            "security": BEARER,
            "parameters": [_OPERATOR],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": NEW_SUBSCRIPTION}},
            },
            "responses": {
                "201": json_answer("Subscribed", CREATED, cache="no-store"),
                **problems(400, 401, 403, 404, 408, 413, 429, 503),
            },
        },
        "get": {
            "summary": "The client's subscriptions",
            "security": BEARER,
            "responses": {
                "200": json_answer("Oldest first", _items(SUBSCRIPTION_VIEW), cache="no-store"),
                **problems(401, 403, 503),
            },
        },
    },
    "/v1/subscriptions/{id}": {
        "get": {
            "summary": "One of the client's subscriptions",
            "security": BEARER,
            "parameters": [_ID],
            "responses": {
                "200": json_answer("The subscription", SUBSCRIPTION_VIEW, cache="no-store"),
                **problems(401, 403, 404, 503),
            },
        },
        "delete": {
            "summary": "End a subscription; what it was still owed is dropped",
            "security": BEARER,
            "parameters": [_ID, _OPERATOR],
            "responses": {
                "204": {
                    "description": "Ended",
                    "headers": {
                        "X-Request-Id": REQUEST_ID_HEADER,
                        "Cache-Control": no_store_header(),
                    },
                },
                **problems(400, 401, 403, 404, 503),
            },
        },
    },
    "/v1/subscriptions/{id}/deliveries": {
        "get": {
            "summary": "The delivery log: each notice's attempts, last status, next attempt",
            "security": BEARER,
            "parameters": [_ID, _LIMIT],
            "responses": {
                "200": json_answer("Newest first", _items(DELIVERY_VIEW), cache="no-store"),
                **problems(400, 401, 403, 404, 503),
            },
        }
    },
}

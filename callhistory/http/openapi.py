"""The OpenAPI 3.1 document, built from the registered methods' msgspec types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from callhistory import __version__
from callhistory.calllogs.schemas import CallTarget
from callhistory.ingest.schemas import IngestedCallLog
from callhistory.kit.errors import (
    AlreadyExists,
    ApiError,
    BadRoute,
    BodyTooLarge,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RequestTimeout,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from callhistory.kit.schemas import ErrorEnvelope
from callhistory.rpc import Method

_ERRORS: tuple[type[ApiError], ...] = (
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    RequestTimeout,
    NotFound,
    AlreadyExists,
    BodyTooLarge,
    RequestTimeout,
    ResourceExhausted,
    Internal,
    Unavailable,
)
_REF = "#/components/schemas/{name}"
# Which codes each HTTP status carries (CONTRACT.md §1).
_CODES_BY_STATUS = {
    400: "invalid_argument (meta.field names the field) or malformed (not a JSON object)",
    401: "unauthenticated: no, unknown or revoked key",
    403: "permission_denied: the key lacks the scope, or the tenant is suspended",
    404: "not_found (a record not in the key's tenant) or bad_route (no such method)",
    409: "already_exists",
    408: "deadline_exceeded: the body did not arrive within CALLHISTORY_BODY_TIMEOUT_MS",
    413: "resource_exhausted: the body is over CALLHISTORY_MAX_BODY_BYTES",
    429: "resource_exhausted: the key's rate limit, the tenant's requests at once, or failed "
    "authentications from this address; retry after Retry-After",
    500: "internal",
    503: "unavailable: the store cannot answer now, or the request outran its time; safe to retry",
}
_STATUS_DOC = {
    "type": "object",
    "properties": {"status": {"type": "string"}},
    "required": ["status"],
}


def build(methods: Sequence[Method]) -> dict[str, Any]:
    types: list[Any] = [ErrorEnvelope, CallTarget, IngestedCallLog]
    for method in methods:
        types += [method.request, method.response]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    ref_of = dict(zip(types, refs, strict=True))
    error = {"content": {"application/json": {"schema": ref_of[ErrorEnvelope]}}}
    statuses = sorted({cls.status for cls in _ERRORS} | {BadRoute.status})
    errors = {str(s): {"description": _CODES_BY_STATUS[s], **error} for s in statuses}
    paths: dict[str, Any] = {}
    for method in methods:
        for prefix in method.prefixes:
            paths[f"/v1/{prefix}.{method.service}/{method.name}"] = {
                "post": {
                    "operationId": f"{prefix}_{method.name}",
                    "summary": method.summary,
                    "tags": [method.service],
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref_of[method.request]}},
                    },
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": ref_of[method.response]}},
                        },
                        **errors,
                    },
                }
            }
    paths["/ingest/freeswitch"] = _freeswitch(errors, ref_of)
    for path, summary in (
        ("/healthz", "The process is up (no database check)"),
        ("/readyz", "The process can reach its database"),
    ):
        paths[path] = {
            "get": {
                "operationId": path.strip("/"),
                "summary": summary,
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": _STATUS_DOC}},
                    },
                    "503": errors["503"],
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "callhistory", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "FreeSWITCH mod_json_cdr's cred: the PBX's own NAME:SECRET "
                    "(callhistory pbx create), or any user with an ingest key as the password",
                },
            },
        },
    }


def _freeswitch(errors: dict[str, Any], ref_of: dict[Any, Any]) -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    return {
        "post": {
            "operationId": "ingest_freeswitch",
            "summary": "One FreeSWITCH mod_json_cdr CDR, in any encoding it sends "
            "(docs/ingest-freeswitch.md)",
            "tags": ["pbx"],
            "security": [{"basic": []}],
            "parameters": [
                {"name": "uuid", "in": "query", "required": False, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/x-www-form-urlencoded": text,
                    "application/x-www-form-base64-encoded": text,
                },
            },
            "responses": {
                "200": {
                    "description": "stored (or unchanged), after the commit",
                    "content": {"application/json": {"schema": ref_of[IngestedCallLog]}},
                },
                **{s: e for s, e in errors.items() if s != "404" and s != "409"},
            },
        }
    }

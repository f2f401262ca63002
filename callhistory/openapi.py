"""The OpenAPI 3.1 document, built from the registered methods' msgspec types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from callhistory import __version__
from callhistory.calllogs.schemas import CallTarget
from callhistory.errors import (
    AlreadyExists,
    ApiError,
    BadRoute,
    BodyTooLarge,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from callhistory.rpc import Method
from callhistory.schemas import ErrorEnvelope

_ERRORS: tuple[type[ApiError], ...] = (
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    BodyTooLarge,
    ResourceExhausted,
    Internal,
    Unavailable,
)
_REF = "#/components/schemas/{name}"


def build(methods: Sequence[Method]) -> dict[str, Any]:
    types: list[Any] = [ErrorEnvelope, CallTarget]
    for method in methods:
        types += [method.request, method.response]
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    ref_of = dict(zip(types, refs, strict=True))
    error = {"content": {"application/json": {"schema": ref_of[ErrorEnvelope]}}}
    statuses = sorted({cls.status for cls in _ERRORS} | {BadRoute.status})
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
                        **{str(s): {"description": "error", **error} for s in statuses},
                    },
                }
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": "callhistory", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

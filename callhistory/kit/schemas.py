"""Wire types shared by every domain: ids, paging, enums' zero values, the error envelope."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Id = Annotated[
    str | int,
    Meta(description='64-bit id: a string of decimal digits (or a JSON integer); "" = not set'),
]
Time = Annotated[
    str | None,
    Meta(description="RFC 3339 in UTC, e.g. 2019-08-24T14:15:22Z; null if it never happened"),
]
Limit = Annotated[
    int | str, Meta(description="page size 1..1000 (string or number); 0 or absent = 100")
]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request: unknown fields are an error, never silently ignored."""


class Paging(Request):
    after: Annotated[str, Meta(max_length=1024)] = ""
    before: Annotated[str, Meta(max_length=1024)] = ""
    limit: Limit = 0
    sort: Annotated[str, Meta(max_length=64)] = ""


class PagingRead(msgspec.Struct, kw_only=True):
    after: str
    before: str
    limit: int
    next: str
    prev: str
    sort: str


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    code: Literal[
        "invalid_argument",
        "malformed",
        "unauthenticated",
        "permission_denied",
        "not_found",
        "already_exists",
        "bad_route",
        "resource_exhausted",
        "internal",
        "unavailable",
    ]
    msg: str
    meta: dict[str, str]

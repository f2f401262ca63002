"""IngestCallLogs: a call log's response fields minus id/created_at/updated_at, plus source_id."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from callhistory.calllogs.schemas import CallState, CallTarget, Direction, Text
from callhistory.kit.schemas import Id, Request

RequestTime = Annotated[
    Annotated[str, Meta(max_length=64)] | None,
    Meta(description="RFC 3339; without an offset the tenant's time zone applies"),
]


class IngestCallLog(Request):
    source_id: Annotated[str, Meta(min_length=1, max_length=255, description="the PBX's call id")]
    started_at: Annotated[str, Meta(max_length=64)]
    ended_at: RequestTime = None
    caller: Annotated[str, Meta(max_length=64)] = ""
    callee: Annotated[str, Meta(max_length=64)] = ""
    direction: Direction = "unknown"
    call_state: CallState = "unknown"
    call_status: Annotated[str, Meta(pattern="^[PNSZ]?$")] = ""
    duration: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None
    call_targets: Annotated[list[CallTarget], Meta(max_length=100)] = []
    extension_id: Id = ""
    user_id: Id = ""
    hotline_id: Id = ""
    contact_id: Id = ""
    external_id: Text = ""
    external_session_id: Text = ""
    recording_urls: Annotated[list[Annotated[str, Meta(max_length=2048)]], Meta(max_length=20)] = []
    note: Annotated[str, Meta(max_length=10_000)] = ""


class IngestCallLogsRequest(Request):
    call_logs: Annotated[list[IngestCallLog], Meta(min_length=1, max_length=1000)]


class IngestedCallLog(msgspec.Struct, kw_only=True):
    id: str
    source_id: str
    created: bool


class IngestCallLogsResponse(msgspec.Struct, kw_only=True):
    call_logs: list[IngestedCallLog]


class DeleteCallLogsRequest(Request):
    """Exactly one of ``ids`` and ``number``."""

    ids: Annotated[list[Id], Meta(max_length=1000)] = []
    number: Annotated[
        str,
        Meta(
            max_length=64,
            description="every call with this number as caller or callee, in any written form",
        ),
    ] = ""
    dry_run: Annotated[bool, Meta(description="count what would be erased; erase nothing")] = False


class DeleteCallLogsResponse(msgspec.Struct, kw_only=True):
    deleted: int
    dry_run: bool

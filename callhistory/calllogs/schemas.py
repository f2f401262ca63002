"""ListCallLogs request and response, as the eTelecom page documents them (CONTRACT.md §3)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from callhistory.kit.schemas import Id, Paging, PagingRead, Request, Time

Direction = Literal["unknown", "in", "out", "ext", "ext_in", "ext_out"]
CallState = Literal["unknown", "answered", "not_answered"]
CallStatus = Literal["P", "N", "S", "Z"]
TargetStatus = Literal["answered", "no_answer", "busy", "cancelled", "failed"]
Comparison = Literal[
    "unknow",
    "unknown",
    "equal",
    "not_equal",
    "less_than",
    "less_than_or_equal_to",
    "greater_than",
    "greater_than_or_equal_to",
]
IdList = Annotated[list[Id], Meta(max_length=100)]
Text = Annotated[str, Meta(max_length=255)]


class DurationFilter(Request):
    comparison: Comparison = "unknown"
    value: Annotated[int | str, Meta(description="whole seconds >= 0")] = 0


class CallLogFilter(Request):
    call_number: Annotated[str, Meta(max_length=64)] = ""
    call_state: CallState | Literal["unknow"] = "unknown"
    date_from: Annotated[str, Meta(max_length=64)] = ""
    date_to: Annotated[str, Meta(max_length=64)] = ""
    department_id: Id = ""
    direction: Direction | Literal["unknow"] = "unknown"
    duration: DurationFilter | None = None
    extension_ids: IdList = []
    external_id: Text = ""
    external_session_id: Text = ""
    hotline_ids: IdList = []
    user_id: Id = ""


class ListCallLogsRequest(Request):
    filter: CallLogFilter | None = None
    paging: Paging | None = None


class CallTarget(msgspec.Struct, kw_only=True):
    """One leg the call rang. Also the ingest shape, where times may carry any offset."""

    add_time: Time = None
    answered_time: Time = None
    end_reason: Text = ""
    ended_time: Time = None
    fail_code: Annotated[int, Meta(ge=0, le=999)] = 0
    ring_duration: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None
    ring_time: Time = None
    status: TargetStatus | Literal[""] = ""
    target_number: Annotated[str, Meta(max_length=64)] = ""
    trunk_name: Text = ""


class CallLog(msgspec.Struct, kw_only=True, omit_defaults=True):
    call_state: CallState
    call_status: CallStatus
    # The server fills these two with msgspec.Raw (their stored JSON, passed through unparsed);
    # msgspec encodes whatever a field holds, and clients decode them as typed lists.
    call_targets: list[CallTarget]
    callee: str
    caller: str
    contact_id: str
    created_at: Time
    direction: Direction
    duration: int
    ended_at: Time
    extension_id: str
    external_id: str
    external_session_id: str
    hotline_id: str
    id: str
    note: str
    recording_urls: list[str]
    # The PBX's names of recordings not uploaded, shown (only) beside links to uploaded ones.
    recording_sources: list[str] = []
    started_at: Time
    updated_at: Time
    user_id: str


class ListCallLogsResponse(msgspec.Struct, kw_only=True):
    call_logs: list[CallLog]
    paging: PagingRead


class GetCallLogRequest(Request):
    """Exactly one of these names the call."""

    id: Id = ""
    source_id: Text = ""
    external_id: Text = ""
    external_session_id: Text = ""


class ListCallLogChangesRequest(Request):
    since: Annotated[
        str,
        Meta(max_length=512, description="`next` of the previous page; empty: from the beginning"),
    ] = ""
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class CallLogChange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``upsert``: the call log as it is now (``call_log``). ``delete``: the tenant erased the
    call (``id``, ``source_id``, ``deleted_at``). ``purge``: retention removed every call that
    started before ``started_before``."""

    type: Literal["upsert", "delete", "purge"]
    call_log: CallLog | None = None
    id: str = ""
    source_id: str = ""
    deleted_at: Time = None
    started_before: Time = None


class ListCallLogChangesResponse(msgspec.Struct, kw_only=True):
    changes: list[CallLogChange]
    next: str


GroupBy = Literal[
    "day", "hour", "weekday", "extension", "user", "department", "hotline", "direction"
]


class GetCallStatsRequest(Request):
    group_by: Annotated[
        list[GroupBy],
        Meta(
            min_length=1,
            max_length=2,
            description="day (YYYY-MM-DD), hour (00-23) and weekday (1 = Monday) in the "
            "tenant's time zone; extension, user, department, hotline (their ids, "
            '"" for calls without one); direction',
        ),
    ]
    filter: CallLogFilter | None = None


class CallStatsBucket(msgspec.Struct, kw_only=True):
    """One bucket: ``key`` has one entry per ``group_by`` item. Times in seconds."""

    key: dict[str, str]
    calls: int
    answered: int
    missed: int  # inbound and not answered
    answer_rate: float  # answered / calls (0 without calls)
    abandoned: int  # inbound, not answered, the caller hung up while a phone rang
    avg_time_to_answer: float | None  # first ring to first answer, over answered calls
    p90_time_to_answer: float | None
    talk_time: int
    avg_talk_time: float  # over answered calls (0 without)


class GetCallStatsResponse(msgspec.Struct, kw_only=True):
    group_by: list[GroupBy]
    timezone: str
    buckets: list[CallStatsBucket]


class MissedCallsFilter(Request):
    """Which missed calls to look at: those that started within the dates (ListCallLogs' date
    rules; without ``date_from``, the 7 days before ``date_to`` or now), on these hotlines."""

    date_from: Annotated[str, Meta(max_length=64)] = ""
    date_to: Annotated[str, Meta(max_length=64)] = ""
    hotline_ids: IdList = []


class ListMissedCallsRequest(Request):
    filter: MissedCallsFilter | None = None
    window_hours: Annotated[
        int,
        Meta(ge=1, le=168, description="a missed call is returned by an answered call this soon"),
    ] = 24
    paging: Paging | None = None


class MissedCall(msgspec.Struct, kw_only=True):
    """A customer's unreturned tries: inbound calls not answered, with no answered call with
    the number (either direction) in the window after any of them, nor between them."""

    number: str  # as the last try wrote it
    attempts: int
    first_try_at: Time
    last_try_at: Time
    last_call_id: str  # the last try's call log
    hotline_id: str  # the hotline the last try called ("" without one)
    callback_attempts: int  # calls to the number after the first try, none answered
    last_callback_at: Time


class ListMissedCallsResponse(msgspec.Struct, kw_only=True):
    missed_calls: list[MissedCall]
    paging: PagingRead

"""Turn a decoded ListCallLogs request into a validated query (CONTRACT.md §3).

Every semantic check names its field; the result is canonical (sorted, de-duplicated, zero values
dropped) so that it can be hashed into the cursors it mints.
"""

from __future__ import annotations

from typing import Final

import msgspec

from callhistory.calllogs.schemas import CallLogFilter, DurationFilter, ListCallLogsRequest
from callhistory.kit.errors import InvalidArgument
from callhistory.kit.ids import parse_id
from callhistory.kit.numbers import normalize
from callhistory.kit.paging import PageRequest, parse_paging, whole_number
from callhistory.kit.schemas import Id
from callhistory.kit.times import optional_request_time

_UNSET = ("unknown", "unknow")
COMPARISONS: Final = {
    "equal": "=",
    "not_equal": "!=",
    "less_than": "<",
    "less_than_or_equal_to": "<=",
    "greater_than": ">",
    "greater_than_or_equal_to": ">=",
}


class CallLogQuery(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The filters of one request, validated and canonical."""

    date_from: int | None = None
    date_to: int | None = None
    call_state: str | None = None
    direction: str | None = None
    duration_op: str | None = None
    duration_value: int | None = None
    call_number: str | None = None
    extension_ids: tuple[int, ...] = ()
    hotline_ids: tuple[int, ...] = ()
    user_id: int | None = None
    department_id: int | None = None
    # The department's users, looked up by the service just before the page query (a literal
    # list the planner can estimate, unlike a subquery); not part of the cursor's filter.
    members: tuple[int, ...] | None = None
    external_id: str | None = None
    external_session_id: str | None = None


def parse_filter(raw: CallLogFilter | None, *, timezone: str) -> CallLogQuery:
    if raw is None:
        return CallLogQuery()
    date_from = optional_request_time(raw.date_from, "filter.date_from", timezone)
    date_to = optional_request_time(raw.date_to, "filter.date_to", timezone, end_of_day=True)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidArgument("filter.date_from", "must not be after filter.date_to")
    duration_op, duration_value = _duration(raw.duration)
    number = normalize(raw.call_number) if raw.call_number else ""
    return CallLogQuery(
        date_from=date_from,
        date_to=date_to,
        call_state=None if raw.call_state in _UNSET else raw.call_state,
        direction=None if raw.direction in _UNSET else raw.direction,
        duration_op=duration_op,
        duration_value=duration_value,
        call_number=number or None,
        extension_ids=_id_list(raw.extension_ids, "filter.extension_ids"),
        hotline_ids=_id_list(raw.hotline_ids, "filter.hotline_ids"),
        user_id=parse_id(raw.user_id, "filter.user_id"),
        department_id=parse_id(raw.department_id, "filter.department_id"),
        external_id=raw.external_id or None,
        external_session_id=raw.external_session_id or None,
    )


def _duration(raw: DurationFilter | None) -> tuple[str | None, int | None]:
    if raw is None or raw.comparison in _UNSET:
        return None, None
    value = whole_number(raw.value, "filter.duration.value", maximum=2**31 - 1)
    return COMPARISONS[raw.comparison], value


def _id_list(values: list[Id], field: str) -> tuple[int, ...]:
    parsed = {parse_id(value, f"{field}[{i}]") for i, value in enumerate(values)}
    return tuple(sorted(v for v in parsed if v is not None))


def parse_request(
    request: ListCallLogsRequest, *, timezone: str, allowed_sorts: tuple[str, ...]
) -> tuple[CallLogQuery, PageRequest]:
    query = parse_filter(request.filter, timezone=timezone)
    page = parse_paging(request.paging, default_sort="-started_at", allowed_sorts=allowed_sorts)
    return query, page

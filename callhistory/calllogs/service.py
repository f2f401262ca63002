"""Reading call logs: ListCallLogs (validate, page, shape), GetCallLog, and the change feed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs import missed, repository, stats
from callhistory.calllogs.query import CallLogQuery, parse_filter, parse_request
from callhistory.calllogs.schemas import (
    CallLog,
    CallLogChange,
    CallLogFilter,
    GetCallLogRequest,
    GetCallStatsRequest,
    GetCallStatsResponse,
    GroupBy,
    ListCallLogChangesRequest,
    ListCallLogChangesResponse,
    ListCallLogsRequest,
    ListCallLogsResponse,
    ListMissedCallsRequest,
    ListMissedCallsResponse,
    MissedCall,
)
from callhistory.directory import service as directory
from callhistory.kit import ids
from callhistory.kit.errors import InvalidArgument, NotFound
from callhistory.kit.paging import (
    ChangeToken,
    ChangeTokenCodec,
    CursorCodec,
    Key,
    paginate,
    parse_paging,
)
from callhistory.kit.times import format_micros, zone
from callhistory.principal import Principal
from callhistory.recordings import service as recordings
from callhistory.rollups import service as rollups

_encoder = msgspec.json.Encoder()
SORTS = tuple(f"{sign}{name}" for name in repository.SORT_COLUMNS for sign in ("", "-"))


async def list_call_logs(
    conn: AsyncConnection, *, principal: Principal, request: ListCallLogsRequest, secret: bytes
) -> ListCallLogsResponse:
    query, page = parse_request(request, timezone=principal.timezone, allowed_sorts=SORTS)
    tenant_id = principal.tenant_id
    codec = CursorCodec(
        secret=secret, tenant_id=tenant_id, sort=page.sort, filter_key=_encoder.encode(query)
    )
    query = await _with_members(conn, tenant_id=tenant_id, query=query)

    async def fetch(
        key: Key | None, forward: bool, limit: int, inclusive: bool
    ) -> list[Sequence[Any]]:
        return await repository.fetch_page(
            conn,
            tenant_id=tenant_id,
            query=query,
            sort=page.sort,
            key=key,
            forward=forward,
            limit=limit,
            inclusive=inclusive,
        )

    async def exists(key: Key, forward: bool) -> bool:
        return await repository.exists_beyond(
            conn, tenant_id=tenant_id, query=query, sort=page.sort, key=key, forward=forward
        )

    result = await paginate(
        request=page,
        codec=codec,
        fetch=fetch,
        exists=exists,
        key_of=lambda row: (row[0], row[1]),
    )
    documents = [msgspec.Raw(doc) for _, _, doc in result.rows]
    return ListCallLogsResponse(call_logs=cast(list[CallLog], documents), paging=result.paging)


_NAMES = ("id", "source_id", "external_id", "external_session_id")


async def get_call_log(
    conn: AsyncConnection, *, principal: Principal, request: GetCallLogRequest
) -> CallLog:
    """The call named by exactly one of id, source_id, external_id, external_session_id;
    ``not_found`` if the tenant has none (another tenant's call included)."""
    given = [name for name in _NAMES if getattr(request, name) not in ("", None)]
    if len(given) != 1:
        field = given[1] if given else "id"
        raise InvalidArgument(field, "give exactly one of " + ", ".join(_NAMES))
    (by,) = given
    value: int | str = getattr(request, by)
    if by == "id":
        parsed = ids.parse_id(value, "id")
        assert parsed is not None
        value = parsed
    doc = await repository.get_document(conn, tenant_id=principal.tenant_id, by=by, value=value)
    if doc is None:
        raise NotFound(f"{by}: no such call log in this tenant", field=by)
    return cast(CallLog, msgspec.Raw(doc))


async def list_changes(
    conn: AsyncConnection,
    *,
    principal: Principal,
    request: ListCallLogChangesRequest,
    secret: bytes,
) -> ListCallLogChangesResponse:
    """The tenant's changes after ``since`` in the order they committed, each call once, as it
    is now (or its erasure); first, once, a purge when retention ran since the token was made.

    Calls stored before the feed existed have no change number: a new reader gets them first,
    by id, then every numbered change. A call written meanwhile has a number, so it comes
    (again) with the numbered changes."""
    tenant_id = principal.tenant_id
    codec = ChangeTokenCodec(secret=secret, tenant_id=tenant_id)
    purged = await repository.purged_before(conn)
    token = (
        codec.decode(request.since, "since")
        if request.since
        else ChangeToken(sequenced=False, position=0, purged_before=purged)
    )
    changes: list[CallLogChange] = []
    if token.purged_before < purged:
        changes.append(CallLogChange(type="purge", started_before=format_micros(purged)))
    limit = request.limit - len(changes)
    sequenced, position = token.sequenced, token.position
    if not sequenced:
        rows = await repository.unsequenced_changes(
            conn, tenant_id=tenant_id, after_id=position, limit=limit
        )
        changes += [_upsert(doc) for _, doc in rows]
        position = int(rows[-1][0]) if rows else position
        if len(rows) < limit:
            sequenced, position = True, 0
    left = request.limit - len(changes)
    if sequenced and left > 0:
        # Read up to the horizon taken first: whatever these reads' snapshots, every change
        # numbered up to it has committed, and one numbered past it comes on a later page.
        horizon = await repository.change_horizon(conn, tenant_id=tenant_id)
        bounds = {"tenant_id": tenant_id, "after": position, "upto": horizon, "limit": left}
        upserts = await repository.upserts_between(conn, **bounds)
        erasures = await repository.erasures_between(conn, **bounds)
        merged = sorted([*upserts, *erasures], key=lambda row: int(row[0]))[:left]
        for row in merged:
            if len(row) == 2:
                changes.append(_upsert(row[1]))
            else:
                _, erased_id, source_id, erased_at = row
                changes.append(
                    CallLogChange(
                        type="delete",
                        id=str(erased_id),
                        source_id=str(source_id),
                        deleted_at=format_micros(int(erased_at)),
                    )
                )
        position = int(merged[-1][0]) if len(merged) == left else max(position, horizon)
    next_token = ChangeToken(sequenced=sequenced, position=position, purged_before=purged)
    return ListCallLogChangesResponse(changes=changes, next=codec.encode(next_token))


def _upsert(doc: bytes) -> CallLogChange:
    return CallLogChange(type="upsert", call_log=cast(CallLog, msgspec.Raw(bytes(doc))))


async def export_query(
    conn: AsyncConnection, *, principal: Principal, filter: CallLogFilter | None
) -> CallLogQuery:
    """An export's filter, validated as ListCallLogs validates it (errors name ``filter.…``)."""
    query = parse_filter(filter, timezone=principal.timezone)
    return await _with_members(conn, tenant_id=principal.tenant_id, query=query)


async def _with_members(
    conn: AsyncConnection, *, tenant_id: int, query: CallLogQuery
) -> CallLogQuery:
    """The query with its department's users (the department filter reads calls by user)."""
    if query.department_id is None:
        return query
    members = await directory.department_members(
        conn, tenant_id=tenant_id, department_id=query.department_id
    )
    return msgspec.structs.replace(query, members=members)


async def export_chunk(
    conn: AsyncConnection,
    *,
    principal: Principal,
    query: CallLogQuery,
    after: Key | None,
    limit: int,
) -> tuple[list[bytes], Key | None]:
    """The next ``limit`` documents of an export, newest first, after ``after``; and where the
    next chunk starts (None: the export is complete). Chunk after chunk is one pass along the
    index, as ListCallLogs' pages are."""
    rows = await repository.fetch_page(
        conn,
        tenant_id=principal.tenant_id,
        query=query,
        sort="-started_at",
        key=after,
        forward=True,
        limit=limit,
        inclusive=False,
    )
    last = (int(rows[-1][0]), int(rows[-1][1])) if len(rows) == limit else None
    return [bytes(doc) for _, _, doc in rows], last


_STATS_CHUNK = 2000


async def get_call_stats(
    conn: AsyncConnection, *, principal: Principal, request: GetCallStatsRequest
) -> GetCallStatsResponse:
    """The calls of the filter counted by ``group_by``: from the statistics kept as calls are
    written where they can answer, else one pass over the calls, as an export reads them."""
    local = zone(principal.timezone)
    query = await export_query(conn, principal=principal, filter=request.filter)
    days = None
    if query.date_from is not None and query.date_to is not None:
        days = (_local_date(query.date_from, local), _local_date(query.date_to, local))
        if "day" in request.group_by and (days[1] - days[0]).days >= stats.MAX_BUCKETS:
            raise InvalidArgument(
                "group_by", f"more than {stats.MAX_BUCKETS} days: narrow the dates"
            )
    departments = (
        await directory.user_departments(conn, tenant_id=principal.tenant_id)
        if "department" in request.group_by
        else {}
    )
    counter = stats.Counter(request.group_by, timezone=principal.timezone, departments=departments)
    if await _count_kept(
        conn, principal=principal, group_by=request.group_by, query=query, counter=counter
    ):
        return GetCallStatsResponse(
            group_by=request.group_by, timezone=principal.timezone, buckets=counter.buckets(days)
        )
    after: Key | None = None
    while True:
        docs, after = await export_chunk(
            conn, principal=principal, query=query, after=after, limit=_STATS_CHUNK
        )
        counter.add(stats.calls_decoder.decode(b"[" + b",".join(docs) + b"]"))
        if after is None:
            break
        await asyncio.sleep(0)  # let other requests in between chunks
    return GetCallStatsResponse(
        group_by=request.group_by, timezone=principal.timezone, buckets=counter.buckets(days)
    )


# Filters the kept statistics cannot answer; what the days' rows group by besides the day.
_UNKEPT = (
    "call_state",
    "direction",
    "duration_op",
    "call_number",
    "user_id",
    "department_id",
    "external_id",
    "external_session_id",
)
_BY_HOUR = frozenset({"day", "hour", "weekday"})
_DAY_DIMENSIONS = {
    "extension": "extension",
    "user": "user",
    "department": "user",
    "hotline": "hotline",
    "direction": "direction",
}


async def _count_kept(
    conn: AsyncConnection,
    *,
    principal: Principal,
    group_by: list[GroupBy],
    query: CallLogQuery,
    counter: stats.Counter,
) -> bool:
    """Count from the statistics kept by local day (alone or by one dimension) or by local
    hour when they hold the answer: whole local days or hours, no filter but the dates;
    False otherwise."""
    unkept = any(getattr(query, name) is not None for name in _UNKEPT)
    if unkept or query.extension_ids or query.hotline_ids:
        return False
    tenant_id, timezone = principal.tenant_id, principal.timezone
    others = [name for name in group_by if name != "day"]
    if len(others) <= 1 and all(name in _DAY_DIMENSIONS for name in others):
        exact, days = rollups.whole(timezone, query.date_from, query.date_to, "day")
        if not exact or not await rollups.ready(conn):
            return False
        dim = _DAY_DIMENSIONS[others[0]] if others else ""
        counter.add_days(await rollups.day_sums(conn, tenant_id=tenant_id, days=days, dim=dim))
        return True
    if set(group_by) <= _BY_HOUR:
        exact, hours = rollups.whole(timezone, query.date_from, query.date_to, "hour")
        if not exact or not await rollups.ready(conn):
            return False
        counter.add_hours(await rollups.hour_sums(conn, tenant_id=tenant_id, hours=hours))
        return True
    return False


def _local_date(micros: int, local: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(micros / 1_000_000, tz=local).date()


_DAY_US = 86_400_000_000
MISSED_DEFAULT_DAYS = 7
MISSED_MAX_DAYS = 92


async def list_missed_calls(
    conn: AsyncConnection,
    *,
    principal: Principal,
    request: ListMissedCallsRequest,
    secret: bytes,
    now: int,
) -> ListMissedCallsResponse:
    """Customers whose inbound calls were left unanswered and not returned, the last try
    first: read from every call with a number in the dates and the window after them."""
    raw = request.filter
    query = parse_filter(
        CallLogFilter(date_from=raw.date_from, date_to=raw.date_to, hotline_ids=raw.hotline_ids)
        if raw is not None
        else None,
        timezone=principal.timezone,
    )
    date_to = query.date_to if query.date_to is not None else now
    date_from = (
        query.date_from
        if query.date_from is not None
        else date_to - MISSED_DEFAULT_DAYS * _DAY_US + 1
    )
    if date_from > date_to:  # only a date_from after now can be: parse_filter checked the rest
        raise InvalidArgument("filter.date_from", "must not be in the future")
    if date_to - date_from >= MISSED_MAX_DAYS * _DAY_US:
        raise InvalidArgument("filter.date_from", f"at most {MISSED_MAX_DAYS} days before date_to")
    page = parse_paging(
        request.paging, default_sort="-last_try_at", allowed_sorts=("-last_try_at",)
    )
    window = request.window_hours * 3_600_000_000
    tenant_id = principal.tenant_id
    filter_key = _encoder.encode([date_from, date_to, query.hotline_ids, window])
    codec = CursorCodec(secret=secret, tenant_id=tenant_id, sort=page.sort, filter_key=filter_key)
    rows = await repository.calls_between(
        conn, tenant_id=tenant_id, start=date_from, end=date_to + window
    )
    runs = missed.unreturned(
        (missed.Call(*row) for row in rows),
        missed_from=date_from,
        missed_to=date_to,
        window=window,
        hotline_ids=query.hotline_ids,
    )
    listed = missed.Listing(runs)
    result = await paginate(
        request=page, codec=codec, fetch=listed.fetch, exists=listed.exists, key_of=missed.key_of
    )
    return ListMissedCallsResponse(
        missed_calls=[_missed_call(run) for run in result.rows], paging=result.paging
    )


def _missed_call(run: missed.Unreturned) -> MissedCall:
    last = run.last
    return MissedCall(
        number=run.number,
        attempts=len(run.tries),
        first_try_at=format_micros(run.tries[0].started_at),
        last_try_at=format_micros(last.started_at),
        last_call_id=str(last.id),
        hotline_id=str(last.hotline_id) if last.hotline_id is not None else "",
        callback_attempts=len(run.callbacks),
        last_callback_at=format_micros(run.callbacks[-1]) if run.callbacks else None,
    )


async def recording_call(
    conn: AsyncConnection, *, principal: Principal, call_id: str, source_id: str
) -> recordings.Call:
    """The call a recording is uploaded for: by ``call_id`` or the PBX's ``source_id`` (one),
    of the caller's tenant."""
    if bool(call_id) == bool(source_id):
        raise InvalidArgument("call_id", "give the call's call_id or its PBX source_id (one)")
    found = await repository.call_recordings(
        conn,
        tenant_id=principal.tenant_id,
        call_id=ids.parse_id(call_id, "call_id") if call_id else None,
        source_id=source_id or None,
    )
    if found is None:
        field = "call_id" if call_id else "source_id"
        raise NotFound(f"{field}: no call {call_id or source_id} in this tenant", field=field)
    number, started_at, named = found
    return recordings.Call(
        id=number, started_at=started_at, named=msgspec.json.decode(named, type=list[str])
    )


async def recordings_index(
    conn: AsyncConnection, *, principal: Principal, start: int, end: int
) -> dict[str, recordings.Call | None]:
    """The recordings named by the tenant's calls started in [start, end), by file name: the
    call naming it (None when several calls name the same file name)."""
    found: dict[str, recordings.Call | None] = {}
    rows = await repository.calls_naming_recordings(
        conn, tenant_id=principal.tenant_id, start=start, end=end
    )
    for number, started_at, named in rows:
        names = msgspec.json.decode(named, type=list[str])
        call = recordings.Call(id=number, started_at=started_at, named=names)
        for name in {recordings.file_name(url) for url in names}:
            found[name] = None if name in found else call
    return found

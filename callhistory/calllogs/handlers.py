"""RPC handlers of the call-log methods."""

from __future__ import annotations

from typing import cast

import msgspec

from callhistory.calllogs import service
from callhistory.calllogs.schemas import (
    CallLog,
    GetCallLogRequest,
    GetCallStatsRequest,
    GetCallStatsResponse,
    ListCallLogChangesRequest,
    ListCallLogChangesResponse,
    ListCallLogsRequest,
    ListCallLogsResponse,
    ListMissedCallsRequest,
    ListMissedCallsResponse,
)
from callhistory.kit.times import now_micros
from callhistory.principal import Scope
from callhistory.recordings import links
from callhistory.recordings import service as recordings
from callhistory.recordings.schemas import CallRecordingsRequest, RecordingList
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


def _linker(ctx: Context) -> recordings.Linker:
    return recordings.Linker(
        key=links.link_key(ctx.cursor_secret),
        base_url=ctx.base_url,
        seconds=ctx.settings.recording_link_seconds,
    )


async def _shown(ctx: Context, docs: list[CallLog]) -> list[CallLog]:
    """The stored documents (``msgspec.Raw``) with their recordings as links."""
    if not recordings.may_keep(ctx.principal.tenant_id):
        return docs
    raw = [bytes(cast(msgspec.Raw, doc)) for doc in docs]
    shown = await recordings.present(
        ctx.read, tenant_id=ctx.principal.tenant_id, docs=raw, linker=_linker(ctx)
    )
    return [cast(CallLog, msgspec.Raw(doc)) for doc in shown]


@methods.rpc(scope=Scope.READ)
async def ListCallLogs(ctx: Context, request: ListCallLogsRequest) -> ListCallLogsResponse:
    """The tenant's call history, newest first by default, filtered and keyset-paged."""
    page = await service.list_call_logs(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )
    page.call_logs = await _shown(ctx, page.call_logs)
    return page


@methods.rpc(scope=Scope.READ)
async def GetCallLog(ctx: Context, request: GetCallLogRequest) -> CallLog:
    """One call log, by exactly one of id, source_id, external_id, external_session_id."""
    found = await service.get_call_log(ctx.read, principal=ctx.principal, request=request)
    return (await _shown(ctx, [found]))[0]


@methods.rpc(scope=Scope.READ)
async def ListCallRecordings(ctx: Context, request: CallRecordingsRequest) -> RecordingList:
    """A call's uploaded recordings, each with a signed link that plays it for a while."""
    call = await service.recording_call(
        ctx.read, principal=ctx.principal, call_id=str(request.call_id), source_id=""
    )
    rows = await recordings.of_call(ctx.read, principal=ctx.principal, call_id=call.id)
    linker, tenant_id = _linker(ctx), ctx.principal.tenant_id
    return RecordingList(
        recordings=[recordings.read(row, tenant_id=tenant_id, linker=linker) for row in rows]
    )


@methods.rpc(scope=Scope.READ)
async def ListCallLogChanges(
    ctx: Context, request: ListCallLogChangesRequest
) -> ListCallLogChangesResponse:
    """What changed since a token, in commit order: each call once as it is now, erasures,
    and retention's purges. Poll with ``next`` forever; tokens never expire."""
    feed = await service.list_changes(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )
    upserts = [change for change in feed.changes if change.call_log is not None]
    shown = await _shown(ctx, [cast(CallLog, change.call_log) for change in upserts])
    for change, doc in zip(upserts, shown, strict=True):
        change.call_log = doc
    return feed


@methods.rpc(scope=Scope.READ)
async def GetCallStats(ctx: Context, request: GetCallStatsRequest) -> GetCallStatsResponse:
    """Calls of a ListCallLogs filter counted by one or two dimensions: answered, missed,
    abandoned, time to answer, talk time."""
    return await service.get_call_stats(ctx.read, principal=ctx.principal, request=request)


@methods.rpc(scope=Scope.READ)
async def ListMissedCalls(ctx: Context, request: ListMissedCallsRequest) -> ListMissedCallsResponse:
    """Customers whose calls were missed and not returned: per customer the tries, the last
    one, and the calls back that were not answered; the last try first."""
    return await service.list_missed_calls(
        ctx.read,
        principal=ctx.principal,
        request=request,
        secret=ctx.cursor_secret,
        now=now_micros(),
    )

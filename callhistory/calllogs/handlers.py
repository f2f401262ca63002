"""RPC handlers of the call-log methods."""

from __future__ import annotations

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
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.READ)
async def ListCallLogs(ctx: Context, request: ListCallLogsRequest) -> ListCallLogsResponse:
    """The tenant's call history, newest first by default, filtered and keyset-paged."""
    return await service.list_call_logs(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )


@methods.rpc(scope=Scope.READ)
async def GetCallLog(ctx: Context, request: GetCallLogRequest) -> CallLog:
    """One call log, by exactly one of id, source_id, external_id, external_session_id."""
    return await service.get_call_log(ctx.read, principal=ctx.principal, request=request)


@methods.rpc(scope=Scope.READ)
async def ListCallLogChanges(
    ctx: Context, request: ListCallLogChangesRequest
) -> ListCallLogChangesResponse:
    """What changed since a token, in commit order: each call once as it is now, erasures,
    and retention's purges. Poll with ``next`` forever; tokens never expire."""
    return await service.list_changes(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )


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

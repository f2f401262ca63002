"""RPC handlers of the call-log methods."""

from __future__ import annotations

from callhistory.calllogs import service
from callhistory.calllogs.schemas import ListCallLogsRequest, ListCallLogsResponse
from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.READ)
async def ListCallLogs(ctx: Context, request: ListCallLogsRequest) -> ListCallLogsResponse:
    """The tenant's call history, newest first by default, filtered and keyset-paged."""
    return await service.list_call_logs(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )

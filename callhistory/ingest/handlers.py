"""The ingest RPC methods: IngestCallLogs for PBXs, DeleteCallLogs (erasure) for a tenant's
admins. (The FreeSWITCH endpoint is the transport's: http.freeswitch.)"""

from __future__ import annotations

from callhistory.ingest import service
from callhistory.ingest.schemas import (
    DeleteCallLogsRequest,
    DeleteCallLogsResponse,
    IngestCallLogsRequest,
    IngestCallLogsResponse,
)
from callhistory.kit import ids
from callhistory.kit.errors import InvalidArgument
from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("pbx",))
tenant_methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.INGEST, write=True)
async def IngestCallLogs(ctx: Context, request: IngestCallLogsRequest) -> IngestCallLogsResponse:
    """Store up to 1000 call logs atomically; idempotent on source_id."""
    stored = await service.ingest(ctx.work, principal=ctx.principal, items=request.call_logs)
    return IngestCallLogsResponse(call_logs=[one.ack() for one in stored])


@tenant_methods.rpc(scope=Scope.ADMIN, write=True)
async def DeleteCallLogs(ctx: Context, request: DeleteCallLogsRequest) -> DeleteCallLogsResponse:
    """Erase calls, by ids or by a customer's number (a request to be forgotten): gone from
    every method, a deletion in the change feed, never stored again from the same CDR."""
    if bool(request.ids) == bool(request.number):
        raise InvalidArgument("number" if request.ids else "ids", "give exactly one of ids, number")
    wanted = [ids.parse_id(value, f"ids[{i}]") for i, value in enumerate(request.ids)]
    deleted = await service.erase_call_logs(
        ctx.work,
        principal=ctx.principal,
        ids=[i for i in wanted if i is not None],
        number=request.number,
        dry_run=request.dry_run,
    )
    return DeleteCallLogsResponse(deleted=deleted, dry_run=request.dry_run)

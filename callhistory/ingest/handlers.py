"""The IngestCallLogs RPC method (the FreeSWITCH endpoint is the transport's: http.freeswitch)."""

from __future__ import annotations

from callhistory.ingest import service
from callhistory.ingest.schemas import IngestCallLogsRequest, IngestCallLogsResponse
from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("pbx",))


@methods.rpc(scope=Scope.INGEST, write=True)
async def IngestCallLogs(ctx: Context, request: IngestCallLogsRequest) -> IngestCallLogsResponse:
    """Store up to 1000 call logs atomically; idempotent on source_id."""
    stored = await service.ingest(ctx.work, principal=ctx.principal, items=request.call_logs)
    return IngestCallLogsResponse(call_logs=[one.ack() for one in stored])

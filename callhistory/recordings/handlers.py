"""RPC handlers of the recording methods (service ``Etelecom``)."""

from __future__ import annotations

from callhistory.principal import Scope
from callhistory.recordings import links, service
from callhistory.recordings.schemas import CallRecordingsRequest, RecordingList
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.READ)
async def ListCallRecordings(ctx: Context, request: CallRecordingsRequest) -> RecordingList:
    """A call's uploaded recordings, each with a signed link that plays it for a while."""
    rows = await service.of_call(ctx.read, principal=ctx.principal, call_id=str(request.call_id))
    key = links.link_key(ctx.cursor_secret)
    seconds = ctx.settings.recording_link_seconds
    return RecordingList(
        recordings=[
            service.read(
                row,
                tenant_id=ctx.principal.tenant_id,
                key=key,
                base_url=ctx.base_url,
                seconds=seconds,
            )
            for row in rows
        ]
    )

"""``GET /v1/export/call_logs.{csv,jsonl}``: a tenant's calls, filtered as ListCallLogs filters
them, streamed as they are read: a chunk of rows at a time, each chunk its own short read, so
memory stays flat at any size and the client sees rows from the first chunk on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import StreamingResponse

from callhistory.calllogs import export as formats
from callhistory.calllogs import service as calllogs
from callhistory.calllogs.query import CallLogQuery
from callhistory.db import deadline
from callhistory.db.engine import Database
from callhistory.db.work import Work, unit_of_work
from callhistory.http.dispatch import Caller, bearer
from callhistory.keys import service as keys
from callhistory.kit.errors import BadRoute, ResourceExhausted
from callhistory.kit.paging import Key
from callhistory.kit.times import zone
from callhistory.principal import Principal, Scope
from callhistory.recordings import service as recordings

# Concurrent exports per tenant and worker: each holds a core for as long as it streams.
EXPORTS_PER_TENANT = 2


async def export_chunks(
    db: Database,
    *,
    principal: Principal,
    query: CallLogQuery,
    timeout_s: float,
    linker: recordings.Linker | None,
) -> AsyncIterator[list[bytes]]:
    """The export's documents (recordings as links, given a ``linker``), a chunk at a time,
    each chunk read in its own unit of work (no read snapshot is held while the client
    downloads)."""
    after: Key | None = None
    while True:
        with deadline.within(timeout_s):
            async with unit_of_work(db, write=False) as work:
                docs, after = await calllogs.export_chunk(
                    work.read, principal=principal, query=query, after=after, limit=formats.CHUNK
                )
                if linker is not None:
                    docs = await recordings.present(
                        work.read, tenant_id=principal.tenant_id, docs=docs, linker=linker
                    )
        if docs:
            yield docs
        if after is None:
            return
        await asyncio.sleep(0)  # let other requests in between chunks


class ExportEntry:
    """Admitted like every request (a key of any scope may read); answers a stream."""

    write = False
    body_limit = 16 * 1024

    def __init__(self, *, db: Database, request_timeout_s: float, link_seconds: int) -> None:
        self._db = db
        self._timeout = request_timeout_s
        self._running: dict[Hashable, int] = {}
        self._link_seconds = link_seconds
        self.link_key = b""  # set at start-up, from the database's secret

    async def authenticate(self, conn: AsyncConnection, request: Request) -> Caller:
        return await keys.authenticate(conn, key=bearer(request), needed=Scope.READ)

    async def run(
        self, work: Work, caller: Caller, body: bytes, request: Request
    ) -> StreamingResponse:
        assert isinstance(caller, Principal)
        kind = request.path_params["format"]
        if kind not in ("csv", "jsonl"):
            raise BadRoute(f"no export at {request.url.path}: call_logs.csv or call_logs.jsonl")
        wanted = formats.parse_options(body, request.query_params.multi_items())
        query = await calllogs.export_query(work.read, principal=caller, filter=wanted.filter)
        tenant = caller.tenant_id
        if self._running.get(tenant, 0) >= EXPORTS_PER_TENANT:
            raise ResourceExhausted(
                f"more than {EXPORTS_PER_TENANT} exports of this tenant at once", retry_after="5"
            )
        local = zone(caller.timezone) if wanted.times == "local" else None
        linker = recordings.Linker(
            key=self.link_key,
            base_url=str(request.base_url).rstrip("/"),
            seconds=self._link_seconds,
        )
        chunks = export_chunks(
            self._db, principal=caller, query=query, timeout_s=self._timeout, linker=linker
        )
        if kind == "csv":
            body_stream = formats.csv_rows(chunks, local, wanted.bom)
        else:
            body_stream = formats.jsonl(chunks)
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
        return StreamingResponse(
            self._counted(tenant, body_stream),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="call_logs.{kind}"'},
        )

    async def _counted(self, tenant: int, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self._running[tenant] = self._running.get(tenant, 0) + 1
        try:
            async for part in stream:
                yield part
        finally:
            self._running[tenant] -= 1
            if not self._running[tenant]:
                del self._running[tenant]

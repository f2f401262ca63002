"""Recordings over HTTP: ``PUT /v1/recordings/{name or path}`` uploads one (an ingest key, the
body streamed into the store) and ``GET``/``HEAD /v1/recordings/{tenant}/{id}/{name}`` plays
one through a signed link, with ``Range`` so a player can seek."""

from __future__ import annotations

import re
import time

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from callhistory.calllogs import service as calllogs
from callhistory.db.engine import Database
from callhistory.db.work import unit_of_work
from callhistory.http.dispatch import (
    Admission,
    Caller,
    bearer,
    envelope_for_unexpected,
    error_response,
)
from callhistory.ingest import service as ingest
from callhistory.keys import service as keys
from callhistory.kit import ids
from callhistory.kit.config import Settings
from callhistory.kit.errors import (
    ApiError,
    BodyTooLarge,
    Canceled,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from callhistory.principal import Principal, Scope
from callhistory.recordings import links, service
from callhistory.recordings.storage import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_REFUSED = "this link is not valid: altered, expired, or not for this recording"


class Recordings:
    """The two recording routes; callers of ``PUT`` show an ingest key (or an admin one)."""

    def __init__(
        self,
        *,
        db: Database,
        admission: Admission,
        settings: Settings,
        cursor_secret: bytes,
        storage: Storage | None,
    ) -> None:
        self._db = db
        self._admission = admission
        self._settings = settings
        self._key = links.link_key(cursor_secret)
        self._storage = storage

    async def authenticate(self, conn: AsyncConnection, request: Request) -> Caller:
        return await keys.authenticate(conn, key=bearer(request), needed=Scope.INGEST)

    def storage(self) -> Storage:
        if self._storage is None:
            raise Unavailable(
                "recordings are not stored here: "
                "set CALLHISTORY_RECORDINGS_URL (docs/recordings.md)"
            )
        return self._storage

    async def upload(self, request: Request) -> Response:
        try:
            return await self._upload(request)
        except ApiError as error:
            return error_response(error)
        except Exception as exc:
            return error_response(envelope_for_unexpected(exc))

    async def _upload(self, request: Request) -> Response:
        settings = self._settings
        max_bytes = settings.recording_max_mb * 1_000_000
        async with unit_of_work(self._db, write=False) as work:
            caller = await self._admission.authenticate(request, self, work.read)
            assert isinstance(caller, Principal)
            who = self._admission.admit(request, caller)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise BodyTooLarge(f"a recording is at most {settings.recording_max_mb} MB")
        storage = self.storage()
        query = request.query_params
        async with self._admission.slot(who):
            async with unit_of_work(self._db, write=False) as work:
                call = await calllogs.recording_call(
                    work.read,
                    principal=caller,
                    call_id=query.get("call_id", ""),
                    source_id=query.get("source_id", ""),
                )
            target = service.target(
                call=call,
                source=request.path_params["source"],
                content_type=request.headers.get("content-type", ""),
            )
            recording_id = ids.new_id()
            try:
                stored = await service.store(
                    storage,
                    request.stream(),
                    tenant_id=caller.tenant_id,
                    recording_id=recording_id,
                    content_type=target.content_type,
                    max_bytes=max_bytes,
                    sha256=request.headers.get("x-checksum-sha256", ""),
                )
            except ClientDisconnect:  # gone mid-upload: nothing of it is kept
                raise Canceled("the client closed the connection during the upload") from None
            try:
                async with unit_of_work(self._db, write=True) as work:
                    conn = await work.write()
                    row, unused = await service.record(
                        conn,
                        principal=caller,
                        target=target,
                        recording_id=recording_id,
                        stored=stored,
                    )
                    if row.id == recording_id:  # new bytes: the call changed
                        await ingest.recording_arrived(conn, principal=caller, call_id=call.id)
            except BaseException:
                await storage.delete(stored.key)
                raise
            for key in unused:
                await storage.delete(key)
        linker = service.Linker(
            key=self._key,
            base_url=str(request.base_url).rstrip("/"),
            seconds=settings.recording_link_seconds,
        )
        read = service.read(row, tenant_id=caller.tenant_id, linker=linker)
        return Response(msgspec.json.encode(read), media_type="application/json")

    async def play(self, request: Request) -> Response:
        try:
            return await self._play(request)
        except ApiError as error:
            return error_response(error)
        except Exception as exc:
            return error_response(envelope_for_unexpected(exc))

    async def _play(self, request: Request) -> Response:
        params, query = request.path_params, request.query_params
        tenant, recording, expires = params["tenant"], params["recording"], query.get("expires", "")
        if not (tenant.isdigit() and recording.isdigit() and expires.isdigit()):
            raise PermissionDenied(_REFUSED)
        tenant_id, recording_id = int(tenant), int(recording)
        if not links.valid(
            self._key,
            tenant_id=tenant_id,
            recording_id=recording_id,
            expires=int(expires),
            given=query.get("signature", ""),
            now=int(time.time()),
        ):
            raise PermissionDenied(_REFUSED)
        async with unit_of_work(self._db, write=False) as work:
            row = await service.linked(work.read, tenant_id=tenant_id, recording_id=recording_id)
        if row is None:
            raise NotFound("this recording was deleted")
        size, etag = row.size, f'"{row.sha256}"'
        headers = {
            "accept-ranges": "bytes",
            "etag": etag,
            "cache-control": "private, max-age=300",
            "content-disposition": f'inline; filename="{row.name}"',
        }
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        start, end, status = 0, size, 200
        wanted = _RANGE.match(request.headers.get("range", "").strip())
        first, last = wanted.groups() if wanted else ("", "")
        if first and last and int(last) < int(first):
            first = last = ""  # not a valid range: ignored, the whole file is sent
        if_range = request.headers.get("if-range", "")
        if (first or last) and (not if_range or if_range == etag):
            if first:
                start = int(first)
                end = min(size, int(last) + 1) if last else size
            else:
                start = max(0, size - int(last))
            if start >= size or end <= start:
                return Response(
                    status_code=416, headers={**headers, "content-range": f"bytes */{size}"}
                )
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=row.content_type)
        storage = self.storage()
        if row.store != storage.url:
            raise Unavailable("this recording is kept in another store than this server's")
        try:
            chunks = await storage.read(row.key, start, end)
        except FileNotFoundError:
            raise NotFound(
                "this recording's file is missing from the store (callhistory recordings check)"
            ) from None
        return StreamingResponse(
            chunks, status_code=status, headers=headers, media_type=row.content_type
        )

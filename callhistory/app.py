"""The ASGI application: RPC methods, health, OpenAPI, one error handler, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import msgspec
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callhistory.calllogs.handlers import methods as calllog_methods
from callhistory.db import partitions
from callhistory.db.engine import Database, open_database, transaction
from callhistory.db.nodes import NodeLease
from callhistory.directory import service as directory
from callhistory.directory.handlers import methods as directory_methods
from callhistory.http import openapi
from callhistory.http.accesslog import AccessLog, configure_logging
from callhistory.http.dispatch import (
    Admission,
    Dispatcher,
    Pipeline,
    TenantSlots,
    envelope_for_unexpected,
    error_response,
)
from callhistory.http.export import ExportEntry
from callhistory.http.freeswitch import FreeSwitchEntry
from callhistory.http.recordings import Recordings
from callhistory.ingest.handlers import methods as ingest_methods
from callhistory.ingest.handlers import tenant_methods as erasure_methods
from callhistory.keys import service as keys
from callhistory.keys.handlers import methods as keys_methods
from callhistory.kit.config import Settings
from callhistory.kit.ratelimit import FailureThrottle, RateLimiter
from callhistory.recordings import links
from callhistory.recordings import service as recordings
from callhistory.recordings.storage import Storage, open_storage
from callhistory.rollups import service as rollups
from callhistory.web import views as web
from callhistory.webhooks import service as webhooks
from callhistory.webhooks.delivery import Deliverer
from callhistory.webhooks.guard import allow_list
from callhistory.webhooks.handlers import methods as webhook_methods

logger = logging.getLogger("callhistory")

METHODS = [
    *calllog_methods.methods,
    *directory_methods.methods,
    *ingest_methods.methods,
    *erasure_methods.methods,
    *keys_methods.methods,
    *webhook_methods.methods,
]


# A request allocates thousands of short-lived containers (a 500-call batch: ~3,000 structs),
# so the default gen-0 threshold of 700 ran the collector several times a request.
_GC_THRESHOLDS = (20_000, 10, 10)


@contextmanager
def _steady_gc() -> Iterator[None]:
    """While serving: what startup built (modules, tables, compiled statements) is moved out of
    the collector's sight, and young objects are collected less often: an ingest batch no
    longer walks startup's objects several times over. Undone at shutdown (tests start many
    apps in one process)."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


async def _purge_recordings(
    db: Database, storage: Storage | None, settings: Settings, stop: asyncio.Event
) -> None:
    """Delete the bytes of erased calls' recordings every few seconds."""
    while not stop.is_set():
        try:
            await recordings.purge(db, storage)
        except Exception:  # the store or the database away for a moment: next time
            logger.exception("recordings: purging erased calls' recordings failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.recording_purge_seconds)


def create_app(settings: Settings, *, migrate: bool = True) -> Starlette:
    allow_list(settings.webhook_allow)  # a bad CALLHISTORY_WEBHOOK_ALLOW stops start-up
    storage = open_storage(settings)  # so does a bad CALLHISTORY_RECORDINGS_URL
    db = open_database(settings)
    document = msgspec.json.encode(openapi.build(METHODS))
    admission = Admission(
        db=db,
        limiter=RateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst),
        throttle=FailureThrottle(per_minute=settings.auth_failures_per_minute),
        tenant_slots=TenantSlots(
            size=settings.tenant_concurrency, wait_s=settings.tenant_queue_ms / 1000
        ),
    )

    pipeline = Pipeline(
        db=db,
        admission=admission,
        body_timeout_s=settings.body_timeout_ms / 1000,
        request_timeout_s=settings.request_timeout_ms / 1000,
    )
    freeswitch = FreeSwitchEntry(max_body_bytes=settings.max_body_bytes)
    export = ExportEntry(
        db=db,
        request_timeout_s=settings.request_timeout_ms / 1000,
        link_seconds=settings.recording_link_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if migrate:
            # Imported here: workers started by `callhistory serve` never migrate, and Alembic
            # would stay resident in each of them.
            from callhistory.db.migrate import upgrade

            await upgrade(db.writer)
            await rollups.build_pending(db)
        async with transaction(db, write=False) as conn:
            secret = await keys.cursor_secret(conn)
            sealer = await keys.sealer(conn, configured=settings.data_key)
        async with transaction(db, write=True) as conn:
            await partitions.create_ahead(conn)
            await directory.reseal_passwords(conn, sealer=sealer)
            await webhooks.reseal_secrets(conn, sealer=sealer)
        export.link_key = links.link_key(secret)
        app.state.recordings = Recordings(
            db=db, admission=admission, settings=settings, cursor_secret=secret, storage=storage
        )
        app.state.dispatcher = Dispatcher(
            pipeline=pipeline,
            methods=METHODS,
            max_body_bytes=settings.max_body_bytes,
            cursor_secret=secret,
            sealer=sealer,
            settings=settings,
        )
        stop = asyncio.Event()
        purging = asyncio.create_task(_purge_recordings(db, storage, settings, stop))
        delivering = (
            asyncio.create_task(Deliverer(db, settings, sealer, cursor_secret=secret).run(stop))
            if settings.deliver
            else None
        )
        try:
            async with NodeLease(db):
                with _steady_gc():
                    yield
        finally:
            stop.set()
            await purging
            if delivering is not None:
                await delivering
        await db.dispose()

    async def rpc(request: Request) -> Response:
        dispatcher: Dispatcher = request.app.state.dispatcher
        return await dispatcher(request)

    async def freeswitch_cdr(request: Request) -> Response:
        return await pipeline.serve(request, freeswitch)

    async def export_call_logs(request: Request) -> Response:
        return await pipeline.serve(request, export)

    async def upload_recording(request: Request) -> Response:
        recordings: Recordings = request.app.state.recordings
        return await recordings.upload(request)

    async def play_recording(request: Request) -> Response:
        recordings: Recordings = request.app.state.recordings
        return await recordings.play(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with transaction(db, write=False) as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return error_response(envelope_for_unexpected(exc))
        return JSONResponse({"status": "ready"})

    async def openapi_json(_: Request) -> Response:
        return Response(document, media_type="application/json")

    configure_logging(settings.log_level)
    routes = [
        *web.routes,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/v1/export/call_logs.{format}", export_call_logs, methods=["GET", "POST"]),
        Route(
            "/v1/recordings/{tenant}/{recording}/{name}",
            play_recording,
            methods=["GET", "HEAD"],
        ),
        Route("/v1/recordings/{source:path}", upload_recording, methods=["PUT"]),
        Route("/v1/{target:path}", rpc, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/ingest/freeswitch", freeswitch_cdr, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AccessLog, enabled=settings.access_log)],
    )


def from_env() -> Starlette:
    """Factory for ``uvicorn --factory``: settings from ``CALLHISTORY_*`` variables."""
    settings = Settings.from_env()
    return create_app(settings, migrate=False)

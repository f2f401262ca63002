"""The one way into the service over HTTP: route, admission (the client's failed-auth throttle,
the key, the key's rate limit, the tenant's slot), body limits, the request's unit of work, and
the error envelope.

A request's unit of work is opened and ended here and nowhere else: handlers receive a
connection, never commit, never check the dialect.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Scope

from callhistory.db import deadline
from callhistory.db.engine import Database, transaction
from callhistory.db.work import Work, unit_of_work
from callhistory.keys import service as keys
from callhistory.keys.schemas import PbxPrincipal
from callhistory.kit.config import Settings
from callhistory.kit.errors import (
    ApiError,
    BadRoute,
    BodyTooLarge,
    Canceled,
    Internal,
    InvalidArgument,
    RequestTimeout,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    decode_error,
)
from callhistory.kit.ratelimit import MAX_KEYS, FailureThrottle, RateLimiter
from callhistory.kit.schemas import ErrorEnvelope
from callhistory.kit.sealing import Sealer
from callhistory.kit.times import now_micros
from callhistory.principal import Principal
from callhistory.rpc import Context, Method

logger = logging.getLogger("callhistory")
_RETRYABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sqlite3.OperationalError,  # busy, locked, or interrupted past its time budget
    OSError,
    TimeoutError,
)
# PostgreSQL SQLSTATEs: connection errors, query cancelled (statement timeout), shutdown, too many
# connections, serialization failure and deadlock, lock not available.
_RETRYABLE_STATES = ("08", "57014", "57P", "53300", "40001", "40P01", "55P03")
# Bodies up to this size are read before the key is checked (a stranger's costs at most this
# much memory a connection); larger ones only after.
EARLY_BODY_BYTES = 16 * 1024
_PATH = re.compile(r"(?P<prefix>[A-Za-z]+)\.(?P<service>[A-Za-z]+)/(?P<method>[A-Za-z]+)")


_encoder = msgspec.json.Encoder()


def error_response(error: ApiError) -> Response:
    headers = {"Retry-After": error.meta["retry_after"]} if "retry_after" in error.meta else None
    body = _encoder.encode(ErrorEnvelope(code=error.code, msg=error.msg, meta=error.meta))  # type: ignore[arg-type]
    return Response(body, status_code=error.status, media_type="application/json", headers=headers)


def _retryable(exc: Exception) -> bool:
    """A failure of the store that may pass: unreachable, timed out, locked, overloaded.
    Hot reads run on the driver (``db.engine.fetch``), so its own errors count too."""
    if isinstance(exc, _RETRYABLE):
        return True
    driver_error = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", "")
    return str(state or "").startswith(_RETRYABLE_STATES)


def envelope_for_unexpected(exc: Exception) -> ApiError:
    """``unavailable`` for a store that cannot answer (safe to retry), else ``internal``;
    neither carries a stack trace or SQL to the caller."""
    if _retryable(exc):
        logger.warning("store unavailable: %s", type(exc).__name__)
        return Unavailable("the store is unavailable, retry later")
    logger.exception("unhandled error")
    return Internal("internal error")


Caller = Principal | PbxPrincipal


class Credentials(Protocol):
    """How an entry point's callers prove who they are."""

    async def authenticate(self, conn: AsyncConnection, request: Request) -> Caller: ...


class Entry(Credentials, Protocol):
    """An HTTP entry point behind the pipeline: its callers' credentials, and what it does
    with an admitted request's body in the request's unit of work."""

    write: bool
    body_limit: int

    async def run(
        self, work: Work, caller: Caller, body: bytes, request: Request
    ) -> msgspec.Struct | Response: ...


class Admission:
    """What every entry point does before its handler: the client address's failed-auth
    throttle, the credentials, the caller's rate limit, and a slot among the tenant's (or
    PBX's) concurrent requests."""

    def __init__(
        self,
        *,
        db: Database,
        limiter: RateLimiter,
        throttle: FailureThrottle,
        tenant_slots: TenantSlots,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self._throttle = throttle
        self._slots = tenant_slots
        self._recording: set[asyncio.Task[None]] = set()
        self._recorded: dict[int, int] = {}  # key id → until when its use is recorded

    async def authenticate(
        self, request: Request, entry: Credentials, conn: AsyncConnection
    ) -> Caller:
        """The entry's caller, its credentials checked on ``conn``; a failure counts against
        the client's address."""
        address = client_address(request)
        self._throttle.check(address)
        try:
            return await entry.authenticate(conn, request)
        except Unauthenticated:
            self._throttle.failed(address)
            raise

    def admit(self, request: Request, caller: Caller) -> Hashable:
        """Take from the caller's rate limit; answer whose concurrent requests it counts among
        (a tenant's, or a PBX's until its CDR names the tenant)."""
        if isinstance(caller, PbxPrincipal):
            bucket: Hashable = ("pbx", caller.id)
            self._limiter.take(bucket)
            request.state.key_id = ""
            return bucket
        self._limiter.take(caller.key_id)
        request.state.key_id = str(caller.key_id) if caller.key_id else ""
        request.state.tenant_id = caller.tenant_id
        now = now_micros()
        if keys.use_is_due(caller, now) and self._recorded.get(caller.key_id, 0) < now:
            # Requests in flight before the stamp commits see the old one: one write a key.
            if len(self._recorded) > MAX_KEYS:
                self._recorded.clear()
            self._recorded[caller.key_id] = now + keys.USE_RESOLUTION
            self._record_use(caller.key_id, now)
        return caller.tenant_id

    def slot(self, who: Hashable) -> AbstractAsyncContextManager[None]:
        return self._slots.slot(who)

    async def try_enter(self, who: Hashable) -> bool:
        return await self._slots.try_enter(who)

    def leave(self, who: Hashable) -> None:
        self._slots.leave(who)

    def _record_use(self, key_id: int, now: int) -> None:
        """The key's last use, written beside the request (a read must not wait for a write)."""

        async def record() -> None:
            try:
                async with transaction(self._db, write=True) as conn:
                    await keys.record_use(conn, key_id=key_id, now=now)
            except Exception as exc:  # a missed stamp is retried by the next request
                logger.warning("could not record a key's use: %s", type(exc).__name__)

        task = asyncio.get_running_loop().create_task(record())
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)


class Pipeline:
    """The one path of every HTTP entry point: the request's deadline, its body (up to
    ``EARLY_BODY_BYTES`` read with the headers, so that the credentials are checked in the
    request's own unit of work; a larger one only once they are accepted), admission, the
    unit of work, and the error envelope."""

    def __init__(
        self,
        *,
        db: Database,
        admission: Admission,
        body_timeout_s: float,
        request_timeout_s: float,
    ) -> None:
        self._db = db
        self._admission = admission
        self._body_timeout = body_timeout_s
        self._timeout = request_timeout_s

    async def serve(self, request: Request, entry: Entry) -> Response:
        try:
            with deadline.within(self._timeout):
                result = await self._serve(request, entry)
        except ApiError as error:
            return error_response(error)
        except Exception as exc:  # the one place unexpected failures become an envelope
            return error_response(envelope_for_unexpected(exc))
        if isinstance(result, Response):  # a stream (an export): it reads in its own units
            return result
        return Response(_encoder.encode(result), media_type="application/json")

    async def _serve(self, request: Request, entry: Entry) -> msgspec.Struct | Response:
        # (A small body's deadline is the connection's, http/server.py: no timer per request.)
        small = reads_body_early(request.scope)
        body = await read_body(request, entry.body_limit) if small else None
        async with unit_of_work(self._db, write=entry.write) as work:
            caller = await self._admission.authenticate(request, entry, work.read)
            who = self._admission.admit(request, caller)
            if body is not None and await self._admission.try_enter(who):
                try:
                    return await entry.run(work, caller, body, request)
                finally:
                    self._admission.leave(who)
        # At the cap of concurrent requests (or the body still to come): waited for without
        # holding a connection.
        async with self._admission.slot(who):
            if body is None:
                body = await read_body(request, entry.body_limit, self._body_timeout)
            async with unit_of_work(self._db, write=entry.write) as work:
                return await entry.run(work, caller, body, request)


class MethodEntry:
    """An RPC method as an entry point: a bearer key of the method's scope, a JSON body."""

    def __init__(
        self,
        method: Method,
        *,
        body_limit: int,
        cursor_secret: bytes,
        sealer: Sealer,
        settings: Settings,
    ) -> None:
        self.method = method
        self.write = method.write
        self.body_limit = body_limit
        self._secret = cursor_secret
        self._sealer = sealer
        self._settings = settings

    async def authenticate(self, conn: AsyncConnection, request: Request) -> Caller:
        return await keys.authenticate(conn, key=bearer(request), needed=self.method.scope)

    async def run(
        self, work: Work, caller: Caller, body: bytes, request: Request
    ) -> msgspec.Struct:
        assert isinstance(caller, Principal)
        decoded = _decode(self.method, body)
        context = Context(
            work=work,
            principal=caller,
            cursor_secret=self._secret,
            sealer=self._sealer,
            settings=self._settings,
            base_url=str(request.base_url).rstrip("/"),
        )
        return await self.method.handler(context, decoded)


class Dispatcher:
    """Routes ``{prefix}.{Service}/{Method}`` (the service matched case-blind) to its method,
    served through the pipeline."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        methods: Iterable[Method],
        max_body_bytes: int,
        cursor_secret: bytes,
        sealer: Sealer,
        settings: Settings,
    ) -> None:
        self._pipeline = pipeline
        self._routes = {
            (prefix, m.service.lower(), m.name): MethodEntry(
                m,
                body_limit=max_body_bytes,
                cursor_secret=cursor_secret,
                sealer=sealer,
                settings=settings,
            )
            for m in methods
            for prefix in m.prefixes
        }

    async def __call__(self, request: Request) -> Response:
        try:
            entry = self._route(request)
        except ApiError as error:
            return error_response(error)
        return await self._pipeline.serve(request, entry)

    def _route(self, request: Request) -> MethodEntry:
        match = _PATH.fullmatch(request.path_params["target"])
        entry = None
        if match:
            route = (match["prefix"], match["service"].lower(), match["method"])
            entry = self._routes.get(route)
        if entry is None:
            raise BadRoute(f"no method at {request.url.path}")
        if request.method != "POST":
            raise BadRoute(f"{entry.method.name} takes POST, not {request.method}")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise BadRoute("Content-Type must be application/json")
        return entry


class TenantSlots:
    """At most ``size`` requests of one tenant at a time in this worker; another waits up to
    ``wait_s`` for a slot, then is refused with 429. One tenant's burst of heavy queries then
    leaves the rest of the connection pool, and of the event loop, to the others."""

    def __init__(self, *, size: int, wait_s: float) -> None:
        self._size = size
        self._wait = wait_s
        # Per tenant with requests in flight: its semaphore and how many hold or wait for it.
        self._tenants: dict[Hashable, tuple[asyncio.Semaphore, list[int]]] = {}

    def _join(self, who: Hashable) -> asyncio.Semaphore:
        entry = self._tenants.get(who)
        if entry is None:
            entry = self._tenants[who] = (asyncio.Semaphore(self._size), [0])
        entry[1][0] += 1
        return entry[0]

    def _part(self, who: Hashable) -> None:
        users = self._tenants[who][1]
        users[0] -= 1
        if not users[0]:
            del self._tenants[who]

    async def try_enter(self, who: Hashable) -> bool:
        """Take a slot if one is free now (``leave`` gives it back); False, at once, if not."""
        if self._size <= 0:
            return True
        semaphore = self._join(who)
        if semaphore.locked():
            self._part(who)
            return False
        await semaphore.acquire()  # free: returns without suspending
        return True

    def leave(self, who: Hashable) -> None:
        if self._size > 0:
            self._tenants[who][0].release()
            self._part(who)

    @asynccontextmanager
    async def slot(self, who: Hashable) -> AsyncIterator[None]:
        """A slot, waited for up to ``wait_s`` when none is free."""
        if not await self.try_enter(who):
            semaphore = self._join(who)
            try:
                await asyncio.wait_for(semaphore.acquire(), self._wait)
            except TimeoutError:
                self._part(who)
                raise ResourceExhausted(
                    f"more than {self._size} requests of this tenant at once", retry_after="1"
                ) from None
            except BaseException:  # cancelled while waiting
                self._part(who)
                raise
        try:
            yield
        finally:
            self.leave(who)


def reads_body_early(scope: Scope) -> bool:
    """Whether the request's body is small enough to be read before its key is checked."""
    declared = declared_length(scope)
    return declared is not None and declared <= EARLY_BODY_BYTES


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (or an absurd one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) < 19 else None
    return None


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def _decode(method: Method, body: bytes) -> msgspec.Struct:
    try:
        decoded: msgspec.Struct = method.decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        # A decoder stops at its first error, which may come before the bad bytes (an unknown
        # field): a body that is not UTF-8 is malformed whatever else it holds. Checked only
        # once decoding failed, so good bodies pay nothing (docs/performance.md).
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as not_utf8:
            raise decode_error(not_utf8) from None
        raise decode_error(exc) from None
    if b"\\u0000" in body:
        _reject_nul(decoded, "")
    return decoded


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The body, refused early (from Content-Length) or as soon as it grows past ``limit``,
    and given up on when it has not all arrived within ``timeout_s`` (if given)."""
    too_large = BodyTooLarge(f"the body is larger than {limit} bytes", limit=str(limit))
    declared = declared_length(request.scope)
    if declared is not None and declared > limit:
        raise too_large
    try:
        if timeout_s is None:
            return await _read(request, limit, too_large)
        async with asyncio.timeout(timeout_s):
            return await _read(request, limit, too_large)
    except ClientDisconnect:
        raise Canceled("the client closed the connection before sending the whole body") from None
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s") from None


async def _read(request: Request, limit: int, too_large: BodyTooLarge) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_nul(value: object, path: str) -> None:
    """NUL characters are refused in every string: PostgreSQL cannot store them, and no
    legitimate value carries one."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidArgument(path, "must not contain NUL characters")
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            _reject_nul(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{path}[{i}]")


def bearer(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("send the API key as Authorization: Bearer <key>")
    return key.strip()

"""Twirp-style RPC over JSON: ``POST /v1/{prefix}.{Service}/{Method}`` → a typed handler.

A handler is ``async def Name(ctx, request: <Struct>) -> <Struct>``; its annotations are the single
definition of what it accepts and returns, and of its OpenAPI entry. The dispatcher reads the body
(bounded), authenticates, decodes with field-path errors, runs the handler in one transaction,
commits, and only then encodes the answer.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, get_type_hints

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from callhistory.db.engine import Database, transaction
from callhistory.errors import (
    ApiError,
    BadRoute,
    BodyTooLarge,
    Internal,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
    decode_error,
)
from callhistory.keys import service as keys
from callhistory.keys.schemas import Principal, Scope
from callhistory.ratelimit import RateLimiter
from callhistory.schemas import ErrorEnvelope

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
_PATH = re.compile(r"(?P<prefix>[A-Za-z]+)\.(?P<service>[A-Za-z]+)/(?P<method>[A-Za-z]+)")


class Context(msgspec.Struct, kw_only=True):
    """What a handler may use: the request's transaction, who is calling, and, for a write on
    a SQLite file, a read transaction for lookups that need not hold the write lock (otherwise
    ``read`` is ``conn``)."""

    conn: AsyncConnection
    read: AsyncConnection
    principal: Principal
    cursor_secret: bytes


Handler = Callable[[Context, Any], Awaitable[msgspec.Struct]]


class Method(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    name: str
    prefixes: tuple[str, ...]
    scope: Scope
    write: bool
    request: type[msgspec.Struct]
    response: type[msgspec.Struct]
    handler: Handler
    summary: str
    decoder: msgspec.json.Decoder[Any]


class MethodSet:
    """The methods of one domain, registered with ``@methods.rpc(scope=...)``."""

    def __init__(self, *, service: str, prefixes: tuple[str, ...]) -> None:
        self.service = service
        self.prefixes = prefixes
        self.methods: list[Method] = []

    def rpc(self, *, scope: Scope, write: bool = False) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            hints = get_type_hints(handler)
            request, response = hints["request"], hints["return"]
            self.methods.append(
                Method(
                    service=self.service,
                    name=handler.__name__,
                    prefixes=self.prefixes,
                    scope=scope,
                    write=write,
                    request=request,
                    response=response,
                    handler=handler,
                    summary=(handler.__doc__ or "").strip(),
                    decoder=msgspec.json.Decoder(request),
                )
            )
            return handler

        return register


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


def unexpected(exc: Exception) -> ApiError:
    """``unavailable`` for a store that cannot answer (safe to retry), else ``internal``;
    neither carries a stack trace or SQL to the caller."""
    if _retryable(exc):
        logger.warning("store unavailable: %s", type(exc).__name__)
        return Unavailable("the store is unavailable, retry later")
    logger.exception("unhandled error")
    return Internal("internal error")


class Dispatcher:
    """Routes ``{prefix}.{Service}/{Method}`` to its handler (the service matched case-blind)."""

    def __init__(
        self,
        *,
        db: Database,
        limiter: RateLimiter,
        methods: Iterable[Method],
        max_body_bytes: int,
        cursor_secret: bytes,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self._max_body = max_body_bytes
        self._secret = cursor_secret
        self._routes = {
            (prefix, m.service.lower(), m.name): m for m in methods for prefix in m.prefixes
        }

    async def __call__(self, request: Request) -> Response:
        try:
            method = self._route(request)
            body = await read_body(request, self._max_body)
            key = _bearer(request)
            # On a SQLite file a write checks the key and does its lookups on the reader, so it
            # holds the write lock only for its own statements (see db.engine.transaction).
            # Where reads and writes share one pool (PostgreSQL), a write takes one connection:
            # two per request could all be held while each waits for its second.
            apart = method.write and self._db.reader is not self._db.writer
            async with transaction(self._db, write=method.write and not apart) as read:
                principal = await self._admit(read, key, method)
                decoded = _decode(method, body)
                if apart:
                    # The read snapshot ends before the write begins (a handler's own lookups
                    # end theirs before writing): one still open when the write commits keeps
                    # SQLite from restarting its WAL, which then grew ~6 MB per ingest batch
                    # and made every read and write slower.
                    await read.commit()
                    async with transaction(self._db, write=True) as conn:
                        context = self._context(conn, read, principal)
                        result = await method.handler(context, decoded)
                else:
                    result = await method.handler(self._context(read, read, principal), decoded)
            request.state.tenant_id = principal.tenant_id
        except ApiError as error:
            return error_response(error)
        except Exception as exc:  # the one place unexpected failures become an envelope
            return error_response(unexpected(exc))
        return Response(_encoder.encode(result), media_type="application/json")

    async def _admit(self, conn: AsyncConnection, key: str, method: Method) -> Principal:
        principal = await keys.authenticate(conn, key=key, needed=method.scope)
        self._limiter.take(principal.key_id)
        return principal

    def _context(
        self, conn: AsyncConnection, read: AsyncConnection, principal: Principal
    ) -> Context:
        return Context(conn=conn, read=read, principal=principal, cursor_secret=self._secret)

    def _route(self, request: Request) -> Method:
        match = _PATH.fullmatch(request.path_params["target"])
        method = None
        if match:
            route = (match["prefix"], match["service"].lower(), match["method"])
            method = self._routes.get(route)
        if method is None:
            raise BadRoute(f"no method at {request.url.path}")
        if request.method != "POST":
            raise BadRoute(f"{method.name} takes POST, not {request.method}")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise BadRoute("Content-Type must be application/json")
        return method


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


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused early (from Content-Length) or as soon as it grows past ``limit``."""
    too_large = BodyTooLarge(f"the body is larger than {limit} bytes", limit=str(limit))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
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


def _bearer(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("send the API key as Authorization: Bearer <key>")
    return key.strip()

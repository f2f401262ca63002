"""The contract between the transport and the domains: an RPC method is
``async def Name(ctx, request: <Struct>) -> <Struct>`` registered on a ``MethodSet``; its
annotations are the single definition of what it accepts and returns, and of its OpenAPI entry.
``http.dispatch`` routes ``POST /v1/{prefix}.{Service}/{Method}`` to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, get_type_hints

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.work import Work
from callhistory.kit.config import Settings
from callhistory.kit.sealing import Sealer
from callhistory.principal import Principal, Scope


class Context(msgspec.Struct, kw_only=True):
    """What a handler may use: the request's unit of work (reads on ``read``; ``await write()``
    for the write transaction, in methods registered with ``write=True``), who is calling, and
    the service's secrets and the operator's settings."""

    work: Work
    principal: Principal
    cursor_secret: bytes
    sealer: Sealer
    settings: Settings
    base_url: str = ""  # scheme://host[:port] the request came to, for links to this service

    @property
    def read(self) -> AsyncConnection:
        return self.work.read

    async def write(self) -> AsyncConnection:
        return await self.work.write()


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

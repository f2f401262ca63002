"""How uvicorn serves the app: connection cap, keep-alive, and a deadline for request heads.

uvicorn closes a kept-alive connection that stays silent, but not one that never finishes its
request line and headers: such sockets stayed open for good, each a file descriptor and a slot.
The protocols here give every request head a deadline, counted from the connection's start or
the previous response, however slowly its bytes trickle in.
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from callhistory.http.dispatch import reads_body_early
from callhistory.kit.config import Settings

KEEP_ALIVE_S = 5


@cache
def _head_timeout_from_env() -> float:
    return Settings.from_env().header_timeout_ms / 1000


class _HeadDeadline:
    """Mixed into uvicorn's protocols (which provide the attributes used here)."""

    head_timeout_s: float | None = None  # None: CALLHISTORY_HEADER_TIMEOUT_MS
    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()  # type: ignore[misc]

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        if not self.transport.is_closing():
            timeout = self.head_timeout_s or _head_timeout_from_env()
            self._head_timer = self.loop.call_later(timeout, self._late_head)

    def _late_head(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        # A request being served had its head in time. A small body is due by the same
        # deadline (the app reads it before the key, without a timer of its own); a larger one
        # has the app's body timeout, once its key is accepted.
        if (
            cycle is not None
            and not cycle.response_complete
            and (not cycle.more_body or not reads_body_early(cycle.scope))
        ):
            return
        self.timeout_keep_alive_handler()  # closes the connection unless already closing


class GuardedH11Protocol(_HeadDeadline, H11Protocol):  # type: ignore[misc]
    """uvicorn's h11 protocol with the head deadline."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's httptools protocol (its default where httptools is installed, as with
        ``uvicorn[standard]``) with the head deadline."""

    PROTOCOL: type[_HeadDeadline] = GuardedHttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    PROTOCOL = GuardedH11Protocol


def protocol_for(settings: Settings) -> type[Any]:
    """The protocol class with ``settings``' head timeout (the tests' servers)."""
    return type(
        PROTOCOL.__name__, (PROTOCOL,), {"head_timeout_s": settings.header_timeout_ms / 1000}
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments shared by ``callhistory serve`` and the tests."""
    return {
        "http": protocol_for(settings),
        "limit_concurrency": settings.max_connections or None,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def uvicorn_arguments(settings: Settings) -> list[str]:
    """The same options as ``uvicorn`` command-line arguments (``callhistory serve``); the
    workers' protocol reads its head timeout from the environment."""
    os.environ["CALLHISTORY_HEADER_TIMEOUT_MS"] = str(settings.header_timeout_ms)
    arguments = ["--http", f"callhistory.http.server:{PROTOCOL.__name__}"]
    arguments += ["--timeout-keep-alive", str(KEEP_ALIVE_S)]
    if settings.max_connections:
        arguments += ["--limit-concurrency", str(settings.max_connections)]
    return arguments

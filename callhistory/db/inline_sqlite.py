"""An aiosqlite connection that runs SQLite calls inline, on the event loop's own thread.

aiosqlite hands every call to a worker thread and back, which costs more than a typical page
query itself (measured here: ``SELECT 1`` 0.42 ms through aiosqlite vs 0.05 ms inline). Reads in
WAL mode never wait for a lock, so the read engine runs them inline; writes, which may wait on
the busy timeout for another process's lock, keep aiosqlite's thread (see ``db.engine``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's API, without its thread: each call runs immediately."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connector(path: str, pragmas: tuple[str, ...]) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy: autocommit mode (BEGIN is issued explicitly)."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    async def create() -> InlineConnection:
        return await InlineConnection(connect, 64)

    return create

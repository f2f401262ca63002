"""An aiosqlite connection that runs SQLite calls inline, on the event loop's own thread.

aiosqlite hands every call to a worker thread and back, which costs more than a typical page
query itself (see docs/performance.md). Reads in WAL mode never wait for a lock, so the read
engine runs them inline; writes, which may wait on the busy timeout for another process's lock,
keep aiosqlite's thread (see ``db.engine``).

Inline, a slow read would hold every other request of the worker, so a read gets a short slice
of the loop (``INLINE_YIELD_EVERY_S``): past it, it is interrupted and run again on a thread, as is
every later read of the same request, until the request's deadline.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import aiosqlite

from callhistory.db import deadline

# How long a read may hold the event loop before it moves to a thread; pages take well under a
# millisecond, so only the rare heavy read pays for starting over (docs/performance.md).
INLINE_YIELD_EVERY_S = 0.02
_PROGRESS_STEPS = 10_000


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's API, without its thread: each call runs immediately.

    Running on the event loop, a runaway query would stall every request of the worker, so each
    call has a time budget: SQLite's progress handler interrupts it past the deadline
    (``OperationalError: interrupted``, answered ``unavailable``).
    """

    budget_s = 0.0  # 0: no budget
    _deadline = 0.0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._connection:
            raise ValueError("Connection closed")
        self._deadline = self._until()
        return fn(*args, **kwargs)

    def _until(self) -> float:
        """The current request's deadline, else this statement's own budget (0: none)."""
        budget = deadline.current()
        if budget is not None:
            return budget.at
        return time.monotonic() + self.budget_s if self.budget_s else 0.0

    def begin(self) -> None:
        if not self._connection:
            raise ValueError("Connection closed")
        self._connection.execute("BEGIN")

    async def fetch_all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of one statement, straight from sqlite3 (see ``db.engine.fetch``): inline for
        up to ``INLINE_YIELD_EVERY_S``, then on a thread."""
        conn = self._connection
        if not conn:
            raise ValueError("Connection closed")
        until = self._until()
        budget = deadline.current()
        if budget is None or not budget.offloaded:
            slice_end = time.monotonic() + INLINE_YIELD_EVERY_S
            self._deadline = min(slice_end, until) if until else slice_end
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                over = until and time.monotonic() >= until
                if str(exc) != "interrupted" or over:
                    raise
            if budget is not None:
                budget.offloaded = True
        return await self._fetch_on_thread(conn, sql, params, until)

    async def _fetch_on_thread(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[Any], until: float
    ) -> list[Any]:
        """The statement on a worker thread (sqlite3 lets go of the GIL while SQLite works),
        interrupted at ``until`` by a timer of the loop rather than the progress handler,
        which would take the GIL back every few thousand steps."""
        loop = asyncio.get_running_loop()
        conn.set_progress_handler(None, 0)
        timer = loop.call_later(until - time.monotonic(), conn.interrupt) if until else None
        running = loop.run_in_executor(None, lambda: conn.execute(sql, params).fetchall())
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            # The connection goes back to the pool only once the thread is done with it.
            conn.interrupt()
            await asyncio.wait([running])
            raise
        finally:
            if timer is not None:
                timer.cancel()
            conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)

    def _over_budget(self) -> int:
        return int(bool(self._deadline) and time.monotonic() > self._deadline)

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


def connector(path: str, pragmas: tuple[str, ...], budget_ms: int = 0) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy: autocommit mode (BEGIN is issued explicitly), and
    each statement interrupted after ``budget_ms`` (0: never)."""

    async def create() -> InlineConnection:
        inline: InlineConnection

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            for pragma in pragmas:
                conn.execute(f"PRAGMA {pragma}")
            conn.set_progress_handler(lambda: inline._over_budget(), _PROGRESS_STEPS)
            return conn

        inline = InlineConnection(connect, 64)
        inline.budget_s = budget_ms / 1000
        return await inline

    return create

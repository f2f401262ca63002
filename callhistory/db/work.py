"""A request's unit of work: the one place a request's transactions open and end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import Database, transaction


class Work:
    """Reads go to ``read``; ``await write()`` gives the write transaction, and from then on
    ``read`` is that transaction too. Nothing but ``unit_of_work`` commits.

    On a SQLite file reads run on the read-only reader, and the write transaction begins only
    when asked for, after the read snapshot has ended (one still open when the write commits
    keeps SQLite from restarting its WAL): the write lock is held for the writing alone, and
    the next batch is checked meanwhile. On one pool (PostgreSQL) a writing request's one
    connection does both: two per request could all be held while each waits for its second.
    """

    def __init__(
        self, db: Database, read: AsyncConnection, stack: AsyncExitStack, *, writes: bool
    ) -> None:
        self._db = db
        self._read = read
        self._stack = stack
        self._writes = writes
        self._conn = read if writes and db.reader is db.writer else None

    @property
    def read(self) -> AsyncConnection:
        return self._conn or self._read

    async def write(self) -> AsyncConnection:
        if self._conn is None:
            if not self._writes:
                raise RuntimeError("a read-only unit of work cannot write")
            await self._read.commit()
            self._conn = await self._stack.enter_async_context(transaction(self._db, write=True))
        return self._conn


@asynccontextmanager
async def unit_of_work(db: Database, *, write: bool) -> AsyncIterator[Work]:
    """Committed when the block ends normally, rolled back on any error."""
    async with AsyncExitStack() as stack:
        read = await stack.enter_async_context(
            transaction(db, write=write and db.reader is db.writer)
        )
        yield Work(db, read, stack, writes=write)

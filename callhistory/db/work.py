"""A request's unit of work: the one place a request's transactions open and end."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType

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

    __slots__ = ("_conn", "_db", "_read", "_writer", "_writes")

    def __init__(self, db: Database, read: AsyncConnection, *, writes: bool) -> None:
        self._db = db
        self._read = read
        self._writes = writes
        self._conn = read if writes and db.reader is db.writer else None
        self._writer: AbstractAsyncContextManager[AsyncConnection] | None = None

    @property
    def read(self) -> AsyncConnection:
        return self._conn or self._read

    async def write(self) -> AsyncConnection:
        if self._conn is None:
            if not self._writes:
                raise RuntimeError("a read-only unit of work cannot write")
            await self._read.commit()
            self._writer = transaction(self._db, write=True)
            self._conn = await self._writer.__aenter__()
        return self._conn


class unit_of_work:  # used as a function: ``async with unit_of_work(db, …)``
    """A request's unit of work: committed when the block ends normally, rolled back on any
    error. (A class rather than a generator: it runs on every request.)"""

    __slots__ = ("_db", "_read", "_work", "_write")

    def __init__(self, db: Database, *, write: bool) -> None:
        self._db = db
        self._write = write

    async def __aenter__(self) -> Work:
        db = self._db
        self._read = transaction(db, write=self._write and db.reader is db.writer)
        self._work = Work(db, await self._read.__aenter__(), writes=self._write)
        return self._work

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        writer = self._work._writer
        try:
            if writer is not None:
                await writer.__aexit__(kind, error, trace)
        except BaseException as failed:  # the commit failed: the read ends with that error
            await self._read.__aexit__(type(failed), failed, failed.__traceback__)
            raise
        await self._read.__aexit__(kind, error, trace)

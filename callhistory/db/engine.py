"""Engine factory for SQLite (aiosqlite) and PostgreSQL (asyncpg), and the transaction boundary."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.compiler import SQLCompiler

from callhistory.db import citus, deadline, inline_sqlite
from callhistory.db.backend import SHARDED, backend
from callhistory.kit.config import ConfigError, Settings

# Marks the few statements that deliberately span tenants (retention, migrations); the tests'
# scope checker refuses any other statement on tenant data without a
# tenant_id filter.
ALL_TENANTS = {"callhistory_all_tenants": True}

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_url(url: str) -> sa.URL:
    """Map a user's database URL (``sqlite:///f.db``, ``postgresql://…``) to its async driver."""
    parsed = sa.make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(
            f"--database / CALLHISTORY_DATABASE_URL: {parsed.drivername!r} is not a database this "
            "service runs on (sqlite:///FILE or postgresql://USER:PASS@HOST/DB)"
        )
    return parsed.set(drivername=driver)


_WRITE_LOCK = "callhistory_write_lock"
_BUSY_MS = "callhistory_busy_timeout_ms"
_BUSY_TIMEOUT_MS = 30_000
_SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    f"busy_timeout={_BUSY_TIMEOUT_MS}",
)
# How often a writer tries again for the write lock another process holds (see _begin_immediate).
_WRITE_LOCK_POLL_S = 0.001
# A writer's page cache (KiB). SQLite's default is smaller than what one ingest batch dirties
# when its source ids and callers land at random in their indexes, and SQLite then spills pages
# to the WAL before the commit and reads them back (docs/performance.md, "Ingest").
_WRITER_CACHE_KIB = 8192


@dataclass(frozen=True)
class Database:
    """The store. PostgreSQL: one pooled engine. SQLite: a writer engine (aiosqlite's thread, so
    waiting for another process's write lock never stalls the event loop) and a read-only reader
    engine that runs queries inline (see ``db.inline_sqlite``)."""

    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.reader is not self.writer:
            await self.writer.dispose()


def open_database(settings: Settings) -> Database:
    writer = create_engine(settings)
    url = async_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return Database(writer=writer, reader=writer)
    pragmas = (*_SQLITE_PRAGMAS, "query_only=ON")
    reader = create_async_engine(
        "sqlite+aiosqlite://",
        hide_parameters=True,
        async_creator=inline_sqlite.connector(url.database, pragmas, settings.statement_timeout_ms),
        poolclass=AsyncAdaptedQueuePool,
        pool_size=settings.pool_size,
        # A connection always comes back committed or rolled back (closing one rolls back
        # what is open), so the pool's own reset would be a second ROLLBACK.
        pool_reset_on_return=None,
    )
    event.listen(reader.sync_engine, "begin", _begin_inline)
    return Database(writer=writer, reader=reader)


def _begin_inline(conn: sa.Connection) -> None:
    """BEGIN on the reader's sqlite3 connection directly: through ``exec_driver_sql`` it cost
    more than the key lookup it guards."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, inline_sqlite.InlineConnection)
    driver.begin()


def create_engine(settings: Settings) -> AsyncEngine:
    """One engine on the database (migrations, tools); the service uses ``open_database``."""
    url = async_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    timeout = str(settings.statement_timeout_ms)
    engine = create_async_engine(
        url,
        # Errors are logged; the values of a failed statement are call data and never are.
        hide_parameters=True,
        pool_size=settings.pool_size,
        max_overflow=0,
        # No ping at each checkout: SQLAlchemy's for asyncpg is three round trips (BEGIN, a
        # query, ROLLBACK) on every request. A connection found dead instead fails
        # its request with a retryable ``unavailable`` and the pool starts afresh
        # (tests/test_ops.py restarts PostgreSQL); long-idle ones are replaced before use.
        pool_recycle=1800,
        connect_args={"server_settings": {"statement_timeout": timeout}},
    )
    event.listen(engine.sync_engine, "connect", _note_citus)
    return engine


def _note_citus(dbapi_connection: Any, record: Any) -> None:
    """Remember on each new connection whether its database is distributed (db.backend)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(citus.INSTALLED)
        record.info[SHARDED] = bool(cursor.fetchone()[0])
    finally:
        cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, enforced foreign keys, and explicit BEGIN (IMMEDIATE for writers, so two writers
    queue instead of failing on a lock upgrade).

    Writers of one process queue on an asyncio lock taken just before BEGIN IMMEDIATE and
    handed over as soon as the previous writer commits; writers of different processes try
    BEGIN IMMEDIATE every millisecond (``_begin_immediate``).
    """
    queue = asyncio.Lock()

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (*_SQLITE_PRAGMAS, f"cache_size=-{_WRITER_CACHE_KIB}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        adapted = cast(AdaptedConnection, conn.connection.dbapi_connection)
        if not conn.get_execution_options().get("callhistory_write", False):
            # A plain read on the writer engine. SQLite's busy handler covers its locks; one
            # that goes on to write must begin as a writer (WAL cannot wait mid-way).
            adapted.run_async(lambda driver: _busy_timeout(driver, conn.info, _BUSY_TIMEOUT_MS))
            conn.exec_driver_sql("BEGIN")
            return
        adapted.run_async(lambda _driver: queue.acquire())
        conn.info[_WRITE_LOCK] = True
        try:
            adapted.run_async(lambda driver: _begin_immediate(driver, conn.info))
        except BaseException:
            _release(conn.info)
            raise

    def _release(info: dict[Any, Any]) -> None:
        if info.pop(_WRITE_LOCK, False):
            queue.release()

    # Released when the transaction ends, and in any case when the connection goes back to
    # the pool (a connection invalidated mid-transaction ends without either event). The
    # "commit" event fires just before COMMIT runs, so the next writer's BEGIN IMMEDIATE may
    # try again once or twice (``_begin_immediate``); releasing at check-in was slower.
    event.listen(engine.sync_engine, "commit", lambda conn: _release(conn.info))
    event.listen(engine.sync_engine, "rollback", lambda conn: _release(conn.info))
    event.listen(engine.sync_engine.pool, "checkin", lambda _dbapi, record: _release(record.info))


async def _begin_immediate(driver: aiosqlite.Connection, info: dict[Any, Any]) -> None:
    """BEGIN IMMEDIATE, tried again every millisecond while another process holds the lock.

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10, 15, 20, 25 ms...), so a
    writer waiting on another process took the lock well after its release, and two workers
    ingesting left it idle between their batches. So writers keep no busy timeout of their
    own: once BEGIN IMMEDIATE holds
    the lock, nothing in WAL mode waits on one (reads never do; the checkpoint after a commit
    never calls it).
    """
    await _busy_timeout(driver, info, 0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await driver.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or loop.time() > deadline:
                raise
        await asyncio.sleep(_WRITE_LOCK_POLL_S)


async def _busy_timeout(driver: aiosqlite.Connection, info: dict[Any, Any], ms: int) -> None:
    """Set the connection's busy timeout when it is not ``ms`` already (``info`` lives as long
    as the connection): switching it around every BEGIN IMMEDIATE took two trips to aiosqlite's
    thread a write transaction."""
    if info.get(_BUSY_MS) != ms:
        await driver.execute(f"PRAGMA busy_timeout = {ms}")
        info[_BUSY_MS] = ms


class InIdList(sa.ColumnElement[bool]):
    """``column`` is one of the ids in a bound JSON array (``"[1,2,3]"``): one parameter
    whatever the list's length, so one SQL text serves every list (SQLite: ``json_each``;
    PostgreSQL: the same text read as an array literal)."""

    inherit_cache = True
    type = sa.Boolean()

    def __init__(self, column: sa.ColumnElement[Any], name: str) -> None:
        self.column = column
        self.ids = sa.bindparam(name, type_=sa.String)


@compiles(InIdList, "sqlite")
def _in_json_each(element: InIdList, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608 - no input in it


@compiles(InIdList, "postgresql")
def _in_array(element: InIdList, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} = ANY(CAST(translate({ids}, '[]', '{{}}') AS BIGINT[]))"


def id_list(ids: Sequence[int]) -> str:
    """The bound value of an ``InIdList``."""
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


def keyset_past(
    columns: tuple[sa.ColumnElement[int], sa.ColumnElement[int]],
    key: tuple[int, int] | tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]],
    *,
    descending: bool,
    inclusive: bool,
) -> sa.ColumnElement[bool]:
    """Keyset condition: rows past ``key`` (values, or bind parameters) along
    ``(sort column, id)`` in the walk's direction (and the row at ``key`` itself when
    ``inclusive``).

    The sort column's bound is also stated on its own: PostgreSQL prunes partitions by it,
    not by the row comparison (a deep page would read every monthly partition).
    """
    value, id_ = (
        part if isinstance(part, sa.ColumnElement) else sa.literal(part, sa.BigInteger)
        for part in key
    )
    position, bound = sa.tuple_(*columns), sa.tuple_(value, id_)
    if descending:
        return sa.and_(columns[0] <= value, position <= bound if inclusive else position < bound)
    return sa.and_(columns[0] >= value, position >= bound if inclusive else position > bound)


@lru_cache(maxsize=1024)
def _compiled(
    dialect: sa.Dialect, statement: sa.ClauseElement
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The statement's SQL, its parameter names in order, and the values it carries itself
    (such as the ``OFFSET 0`` SQLite's dialect adds to a LIMIT)."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    constants = {k: v for k, v in compiled.construct_params(_check=False).items() if v is not None}
    return str(compiled), tuple(compiled.positiontup or ()), constants


async def fetch(
    conn: AsyncConnection, statement: sa.ClauseElement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Rows of a hot read, run on the driver in ``conn``'s transaction.

    On PostgreSQL, SQLAlchemy's asyncpg adapter sends BEGIN with its own first statement, so a
    request whose statements all come here (a page read) runs each on its own. Under READ
    COMMITTED that sees what a transaction would (each statement takes its own snapshot), without
    BEGIN's and COMMIT's round trips. A write takes its lock with
    ``conn.execute`` first (``lock_for_ingest``), so its statements here run inside the
    transaction; a row lock taken here with nothing before it would not be held.

    ``statement`` is built once (a module constant, or cached per query shape) with named bind
    parameters, compiled once per dialect, and executed with ``params`` on the driver connection.
    On a page, SQLAlchemy's per-execution work (building, cache key, execution context, result
    rows) cost more than SQLite's own query. Rows are plain tuples or records,
    read by position. Listeners of ``before_cursor_execute`` (the tests' tenant-scope checker)
    still see every statement.
    """
    sync = conn.sync_connection
    driver = await _driver(conn)
    if not conn.in_transaction():  # the driver call below belongs to conn's transaction
        if sync is not None and isinstance(driver, inline_sqlite.InlineConnection):
            sync.begin()  # a plain call on the inline reader (see _driver)
        else:
            await conn.begin()
    sql, names, constants = _compiled(conn.dialect, statement)
    values = [params[name] if name in params else constants[name] for name in names]
    if sync is not None:
        sync.dispatch.before_cursor_execute(sync, None, sql, values, None, False)
    if isinstance(driver, inline_sqlite.InlineConnection):
        return await driver.fetch_all(sql, values)
    if isinstance(driver, aiosqlite.Connection):
        return list(await driver.execute_fetchall(sql, values))
    assert driver is not None
    budget = deadline.current()
    left = None if budget is None else budget.left()
    if left is not None and left <= 0:
        raise TimeoutError("the request ran out of time")
    try:
        return await driver.fetch(sql, *values, timeout=left)  # type: ignore[no-any-return]
    except Exception as exc:
        if not driver.is_closed():
            raise
        # The server went away (a restart), and with it every pooled connection: as SQLAlchemy
        # does on a disconnect in its own paths, the pool starts afresh (rather than one
        # request failing per dead connection), and this request answers ``unavailable``.
        await conn.invalidate()
        await conn.engine.dispose()
        raise ConnectionError("lost the connection to the database") from exc


async def _driver(conn: AsyncConnection) -> Any:
    """The driver connection under ``conn``. A live connection hands it over without SQLAlchemy's
    trip through a greenlet (which only matters to revive a closed or invalidated one); and on
    the inline SQLite reader BEGIN is a plain call too (the "begin" listener, ``_begin_inline``),
    so ``fetch`` begins it directly: each trip saved is a noticeable share of a short read."""
    sync = conn.sync_connection
    if sync is not None and not (sync.closed or sync.invalidated):
        return sync.connection.driver_connection
    return (await conn.get_raw_connection()).driver_connection


@asynccontextmanager
async def transaction(db: Database, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """One transaction: committed when the block ends normally (a read on SQLite's read-only
    reader simply ends as its connection closes), rolled back on any error.

    It begins at the block's first statement, not at its start: work done before that (an
    ingest batch's validation) does not hold SQLite's write lock, so the next batch is checked
    while this one is written.
    """
    async with (db.writer if write else db.reader).connect() as conn:
        if write:
            conn = await conn.execution_options(callhistory_write=True)
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        if write or db.reader is db.writer:
            await conn.commit()
        # SQLite's reader is read-only (query_only): closing its connection ends the read
        # transaction (a rollback, the same as a commit for a read) one greenlet trip sooner.


async def lock_tenant_writes(conn: AsyncConnection, *, tenant_id: int) -> None:
    """Serialise the tenant's writers (ingest batches, erasures, rebuilding its statistics)
    until the transaction ends. Where writers run one at a time (SQLite) that is all it
    takes; elsewhere a transaction-scoped advisory lock."""
    if not backend(conn).serial_writers:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(tenant_id)))

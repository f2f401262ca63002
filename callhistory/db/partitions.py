"""PostgreSQL's monthly partitions of call_logs: created ahead of time and on demand, and
dropped whole for retention (SQLite keeps one table)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callhistory.db.backend import backend
from callhistory.db.engine import ALL_TENANTS
from callhistory.db.months import month_of, month_start, next_month
from callhistory.kit.times import now_micros

_PARTITION_LOCK = 0x63616C6C  # advisory lock serialising partition creation across processes
_PARTITION = re.compile(r"call_logs_p\d{6}")
_MONTH = 31 * 86_400_000_000
_LOCK_NOT_AVAILABLE = "55P03"
_SHARDED_LOCK_TIMEOUT_MS = 100  # how long Citus readers may queue behind a detach


async def create_ahead(conn: AsyncConnection) -> None:
    """This month's and the next two months' partitions, created before calls need them."""
    now = now_micros()
    await ensure_partitions(conn, started=[now + i * _MONTH for i in range(3)])


def _partition_name(year: int, month: int) -> str:
    return f"call_logs_p{year:04d}{month:02d}"


async def _partitions(conn: AsyncConnection) -> set[str]:
    """Names of the monthly partitions of call_logs, read from the catalog."""
    result = await conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'call_logs'::regclass"
        )
    )
    return {name for name in result.scalars() if _PARTITION.fullmatch(name)}


async def ensure_partitions(conn: AsyncConnection, *, started: Iterable[int]) -> None:
    """Make sure the monthly partitions holding these start times exist (PostgreSQL only).

    New partitions are created empty and then attached, which locks the parent only in SHARE
    UPDATE EXCLUSIVE mode: reads and writes of call logs go on meanwhile.
    """
    if conn.dialect.name != "postgresql":
        return
    wanted = {_partition_name(*month_of(micros)): month_of(micros) for micros in started}
    if not wanted.keys() - await _partitions(conn):
        return
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PARTITION_LOCK)))
    existing = await _partitions(conn)  # again, now that no other process is creating any
    for name, (year, month) in sorted(wanted.items()):
        if name not in existing:
            lower = month_start(year, month)
            upper = month_start(*next_month(year, month))
            await conn.execute(
                sa.text(
                    f"CREATE TABLE {name} (LIKE call_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
            )
            await conn.execute(
                sa.text(
                    f"ALTER TABLE call_logs ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ({lower}) TO ({upper})"
                )
            )


class RetentionBlocked(RuntimeError):
    """A partition could not be detached within the lock timeout, however often tried."""


async def drop_partitions_before(
    engine: AsyncEngine, *, cutoff: int, lock_timeout_ms: int | None = None, attempts: int = 30
) -> int:
    """Drop the monthly partitions wholly before ``cutoff`` (PostgreSQL); returns how many
    calls they held.

    Each is detached CONCURRENTLY, in its own transactions (the statement cannot run in one):
    readers and writers of call_logs go on and never queue behind it. It waits for the
    transactions that may still read the partition, each wait bounded by ``lock_timeout``;
    a detach cut short stays pending and is finished (FINALIZE) at the next attempt. No
    statement timeout: this is maintenance, not a request.

    Citus detaches in one step (it has no CONCURRENTLY), whose lock makes readers queue
    behind it while it waits: there each wait is bounded by a short lock timeout instead."""
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        if lock_timeout_ms is None:
            lock_timeout_ms = _SHARDED_LOCK_TIMEOUT_MS if backend(conn).sharded else 2000
        await conn.execute(sa.text("SET statement_timeout = 0"))
        await conn.execute(sa.text(f"SET lock_timeout = {int(lock_timeout_ms)}"))
        try:
            return await _drop_before(conn, cutoff=cutoff, attempts=attempts)
        finally:  # the pool hands this connection out again
            await conn.execute(sa.text("RESET statement_timeout"))
            await conn.execute(sa.text("RESET lock_timeout"))


async def _drop_before(conn: AsyncConnection, *, cutoff: int, attempts: int) -> int:
    """Detach (see ``_detach``), count and drop each partition wholly before ``cutoff``."""
    removed = 0
    result = await conn.execute(
        sa.text(
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'call_logs'::regclass"
        )
    )
    for name, pending in sorted(result.all()):
        if not _PARTITION.fullmatch(name):
            continue
        year, month = int(name[-6:-2]), int(name[-2:])
        if month_start(*next_month(year, month)) > cutoff:
            continue
        await _detach(conn, name, pending=bool(pending), attempts=attempts)
        count = await conn.execute(
            sa.select(sa.func.count()).select_from(sa.table(name)),
            execution_options=ALL_TENANTS,
        )
        removed += int(count.scalar_one())
        await conn.execute(sa.text(f"DROP TABLE {name}"))
    return removed


async def _detach(conn: AsyncConnection, name: str, *, pending: bool, attempts: int) -> None:
    for attempt in range(attempts):
        how = "" if backend(conn).sharded else "FINALIZE" if pending else "CONCURRENTLY"
        try:
            await conn.execute(sa.text(f"ALTER TABLE call_logs DETACH PARTITION {name} {how}"))
            return
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            # A concurrent detach that timed out while waiting leaves the partition pending.
            pending = bool(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT i.inhdetachpending FROM pg_inherits i "
                            "WHERE i.inhrelid = CAST(:name AS regclass)"
                        ),
                        {"name": name},
                    )
                ).scalar()
            )
            await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
    raise RetentionBlocked(
        f"partition {name} is still being read after {attempts} tries; "
        "a long transaction holds it: run retention again later"
    )

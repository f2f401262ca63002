"""A runaway SQLite read is interrupted by its time budget and answered as unavailable."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from callhistory.db import deadline
from callhistory.db.engine import fetch, open_database, transaction
from callhistory.http.dispatch import envelope_for_unexpected
from callhistory.kit.config import Settings

SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
    "SELECT count(*) FROM c"
)


def run(tmp_path: Path, budget_ms: int, sql: str, *, on_driver: bool = False) -> object:
    """One read, through SQLAlchemy or on the driver (``db.engine.fetch``, the hot path)."""

    async def go() -> object:
        db = open_database(
            Settings(database_url=f"sqlite:///{tmp_path}/b.db", statement_timeout_ms=budget_ms)
        )
        try:
            async with transaction(db, write=False) as conn:
                if on_driver:
                    return (await fetch(conn, sa.text(sql), {}))[0][0]
                return (await conn.execute(sa.text(sql))).scalar_one()
        finally:
            await db.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("on_driver", [False, True])
def test_runaway_read_is_interrupted_as_unavailable(tmp_path: Path, on_driver: bool) -> None:
    with pytest.raises((sa.exc.OperationalError, sqlite3.OperationalError)) as caught:
        run(tmp_path, 50, SLOW, on_driver=on_driver)
    assert "interrupted" in str(caught.value)
    assert envelope_for_unexpected(caught.value).code == "unavailable"


@pytest.mark.parametrize("on_driver", [False, True])
def test_reads_within_budget_are_untouched(tmp_path: Path, on_driver: bool) -> None:
    assert run(tmp_path, 5000, "SELECT 41 + 1", on_driver=on_driver) == 42


def test_a_heavy_read_leaves_the_event_loop_to_the_other_requests(tmp_path: Path) -> None:
    """A read past its inline slice goes on on a thread: the loop keeps serving (here: a ticker
    standing in for the other requests) while it runs, and its answer is the same."""
    heavy = SLOW.replace("50000000", "3000000")

    async def go() -> tuple[object, float, float]:
        db = open_database(Settings(database_url=f"sqlite:///{tmp_path}/b.db"))
        gaps: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        try:
            with deadline.within(30):
                async with transaction(db, write=False) as conn:
                    value = (await fetch(conn, sa.text(heavy), {}))[0][0]
        finally:
            done.set()
            await ticker
            await db.dispose()
        return value, time.monotonic() - started, max(gaps)

    value, took, longest_gap = asyncio.run(go())
    assert value == 3_000_000
    assert took > 0.3, "the read was too light to show anything"
    assert longest_gap < took / 3, (longest_gap, took)


def test_a_request_deadline_bounds_all_its_reads_together(tmp_path: Path) -> None:
    """Each read alone is within any per-statement budget; together they outrun the request's."""
    medium = SLOW.replace("50000000", "1000000")

    async def go() -> int:
        db = open_database(
            Settings(database_url=f"sqlite:///{tmp_path}/b.db", statement_timeout_ms=60_000)
        )
        reads = 0
        try:
            with deadline.within(0.5):
                async with transaction(db, write=False) as conn:
                    for _ in range(100):
                        await fetch(conn, sa.text(medium), {})
                        reads += 1
        finally:
            await db.dispose()
        return reads

    with pytest.raises(sqlite3.OperationalError, match="interrupted") as caught:
        asyncio.run(go())
    assert envelope_for_unexpected(caught.value).code == "unavailable"
